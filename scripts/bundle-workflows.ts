import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * Bundles workflows/ once, ahead of time, so a production worker starts without webpack.
 * Usage: node dist/scripts/bundle-workflows.js [output path]   (default dist/workflow-bundle.js)
 */
export async function writeWorkflowBundle(outputPath: string, workflowsPath: string): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  await mkdir(dirname(outputPath), { recursive: true });
  await writeFile(outputPath, code);
}

const noop = () => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: (message: string) => console.error(message) };

if (require.main === module) {
  const output = resolve(process.argv[2] ?? 'dist/workflow-bundle.js');
  writeWorkflowBundle(output, require.resolve('../workflows')).then(
    () => console.log(`workflow bundle written to ${output}`),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
