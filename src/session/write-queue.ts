const ignore = (): void => {};

/**
 * Runs asynchronous tasks one at a time per key, in call order: a task starts only when the
 * previous one for its key has settled (fulfilled or rejected). A key is forgotten as soon as
 * its queue runs dry, so idle sessions cost nothing here.
 */
export class WriteQueue {
  /** Per key, the settled-signal of the last queued task. */
  readonly #tails = new Map<string, Promise<void>>();

  /** Keys with a task queued or running. */
  get size(): number {
    return this.#tails.size;
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key);
    const result = previous === undefined ? task() : previous.then(task);
    const settled = result.then(ignore, ignore);
    this.#tails.set(key, settled);
    void settled.then(() => {
      if (this.#tails.get(key) === settled) this.#tails.delete(key);
    });
    return result;
  }
}
