/**
 * What the request path needs of the affinity table. In one process the AffinityTable
 * itself; in a proxy worker a local mirror that reports to the control plane in batches,
 * so routing never waits on another process.
 */
export interface AffinityView {
  /** Whether any session has moved off the node its id names (lets the hot path skip a lookup). */
  readonly hasMoved: boolean;
  /** The node a moved session now lives on, if it moved. */
  movedNodeOf(key: string): string | undefined;
  /**
   * The node used the session for a request: create or refresh its entry (never re-pin).
   * `isNew`: the proxy minted this session for the request; `version`: the session's version
   * after it, as the node reported (the proof a failed request left no trace is built on it).
   */
  record(key: string, nodeId: string, isNew: boolean, version: number): void;
}
