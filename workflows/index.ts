// Everything the worker bundles. Workflow code only: no activities, no Node built-ins.
export { selfCheckWorkflow } from './selfCheck';
export { sandboxWorkflow } from './sandbox';
export { sandboxSweepWorkflow } from './sandboxSweep';
export { pxeSessionWorkflow } from './pxeSession';
export { pxeImageWorkflow, pxeBootServerStatusWorkflow } from './pxeImage';
export { codeExecutionWorkflow } from './codeExecution';
export { executionPoolWorkflow } from './executionPool';
export { terminalSessionWorkflow } from './terminal';
