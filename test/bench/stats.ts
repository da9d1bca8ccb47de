/** Latency summary of a sample in milliseconds. */
export function summarise(samples: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { n: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN };
}

export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1).padStart(8) : '     n/a';
}

export function printTable(title: string, rows: { name: string; samples: number[]; extra?: string }[]): void {
  console.log(`\n${title}`);
  console.log(`${'case'.padEnd(44)}${'n'.padStart(6)}${'p50 ms'.padStart(9)}${'p95 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(9)}  notes`);
  for (const row of rows) {
    const s = summarise(row.samples);
    console.log(`${row.name.padEnd(44)}${String(s.n).padStart(6)} ${ms(s.p50)} ${ms(s.p95)} ${ms(s.p99)} ${ms(s.max)}  ${row.extra ?? ''}`);
  }
}

/** Runs `task` `total` times with at most `concurrency` in flight; returns per-call ms and wall ms. */
export async function load(total: number, concurrency: number, task: (i: number) => Promise<void>): Promise<{ samples: number[]; wallMs: number; errors: number }> {
  const samples: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        try {
          await task(i);
          samples.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { samples, wallMs: performance.now() - started, errors };
}

/** Runs a benchmark's main and exits: the Temporal native runtime would otherwise keep it alive. */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
