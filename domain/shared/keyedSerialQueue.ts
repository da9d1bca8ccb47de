/**
 * Tasks run one after another per key, in the order they arrive; a task that fails does not
 * stop the ones behind it. Plain promise chaining — no timers, no I/O — so it is deterministic
 * and serves workflow code (a chat's ensures, stops and cleanups) as well as activities (one
 * boot server's targetcli commands and DHCP rewrites).
 */
export class KeyedSerialQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => this.tails.get(key) === tail && this.tails.delete(key));
    return result;
  }
}
