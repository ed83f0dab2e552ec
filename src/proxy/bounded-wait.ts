/**
 * Settles as `promise` does, or after `timeoutMs` as `onTimeout` says (its value, or what it
 * throws), whichever comes first. A request never waits on another part of the proxy (the
 * control plane, a session move, the replica store) without a bound: an answer can be lost
 * (a dying process, a stuck store) and the client must still get one.
 */
export function boundedWait<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
