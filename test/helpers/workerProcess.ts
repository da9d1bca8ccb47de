import { spawn, type ChildProcess } from 'node:child_process';
import { testNamespace } from './testRun';

/**
 * Starts a worker module of test/helpers (TypeScript compiled on load) in a child process of its
 * own, so a test can kill it with SIGKILL mid-workflow; resolves once the process says `polling`.
 * It polls `taskQueue` in the tests' namespace and runs the run's workflow bundle.
 */
export async function spawnWorkerProcess(module: string, taskQueue: string, extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const compileOnLoad = `
    const ts = require('typescript');
    const fs = require('fs');
    require.extensions['.ts'] = (module, file) => module._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), {
      fileName: file, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText, file);
    require(process.argv[1]);`;
  const child = spawn(process.execPath, ['-e', compileOnLoad, require.resolve(module)], {
    env: { ...process.env, TEMPORAL_NAMESPACE: testNamespace(), TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH: process.env.SF_TEST_WORKFLOW_BUNDLE, ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('polling')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the worker process ${module} exited ${code} before polling`)));
  });
  return child;
}
