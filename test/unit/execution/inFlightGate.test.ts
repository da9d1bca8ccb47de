import { InFlightGate } from '../../../api/execution/inFlightGate';

class Held {
  readonly started: string[] = [];
  private readonly releases = new Map<string, () => void>();
  private readonly failures = new Map<string, (err: Error) => void>();
  private running = 0;
  maxRunning = 0;

  call(name: string): () => Promise<string> {
    return () => {
      this.started.push(name);
      this.running++;
      this.maxRunning = Math.max(this.maxRunning, this.running);
      return new Promise<string>((resolve, reject) => {
        this.releases.set(name, () => resolve(name));
        this.failures.set(name, reject);
      }).finally(() => this.running--);
    };
  }

  release(name: string): void {
    this.releases.get(name)!();
  }

  fail(name: string): void {
    this.failures.get(name)!(new Error(`${name} failed`));
  }
}

const later = (ms: number) => Date.now() + ms;
const timedOut = () => new Error('timed out waiting');
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('InFlightGate', () => {
  it('never runs more than its limit of calls at once', async () => {
    const gate = new InFlightGate(3);
    const held = new Held();
    const names = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const results = names.map((name) => gate.run(later(10_000), timedOut, held.call(name)));
    await settle();
    expect(held.started).toHaveLength(3);
    for (const name of names) {
      await settle();
      held.release(name);
    }
    await expect(Promise.all(results)).resolves.toEqual(names);
    expect(held.maxRunning).toBe(3);
  });

  it('admits waiting calls in the order they arrived', async () => {
    const gate = new InFlightGate(1);
    const held = new Held();
    const names = ['first', 'second', 'third', 'fourth'];
    const results = names.map((name) => gate.run(later(10_000), timedOut, held.call(name)));
    for (const [i, name] of names.entries()) {
      await settle();
      expect(held.started).toEqual(names.slice(0, i + 1));
      held.release(name);
    }
    await expect(Promise.all(results)).resolves.toEqual(names);
  });

  it('rejects a call still waiting at its deadline without ever starting it', async () => {
    const gate = new InFlightGate(1);
    const held = new Held();
    const expired = new Error('expired');
    const running = gate.run(later(10_000), timedOut, held.call('running'));
    const expiring = gate.run(later(20), () => expired, held.call('expiring'));
    const patient = gate.run(later(10_000), timedOut, held.call('patient'));
    await expect(expiring).rejects.toBe(expired);
    held.release('running');
    await settle();
    held.release('patient');
    await expect(Promise.all([running, patient])).resolves.toEqual(['running', 'patient']);
    expect(held.started).toEqual(['running', 'patient']);
  });

  it('frees the slot of a failing call for the next one, or for a later caller when none waits', async () => {
    const gate = new InFlightGate(1);
    const held = new Held();
    const failing = gate.run(later(10_000), timedOut, held.call('failing'));
    const next = gate.run(later(10_000), timedOut, held.call('next'));
    await settle();
    held.fail('failing');
    await expect(failing).rejects.toThrow('failing failed');
    await settle();
    expect(held.started).toEqual(['failing', 'next']);
    held.fail('next');
    await expect(next).rejects.toThrow('next failed');
    const free = gate.run(later(10_000), timedOut, held.call('free'));
    await settle();
    expect(held.started).toEqual(['failing', 'next', 'free']);
    held.release('free');
    await expect(free).resolves.toBe('free');
  });
});
