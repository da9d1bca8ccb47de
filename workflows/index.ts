// Everything the worker bundles. Workflow code only: no activities, no Node built-ins.
export { selfCheckWorkflow } from './selfCheck/selfCheck';
export { sandboxWorkflow } from './sandbox/sandbox';
export { sandboxSweepWorkflow } from './sandbox/sandboxSweep';
export { retentionSweepWorkflow } from './retention/retention';
export { pxeSessionWorkflow } from './pxe/pxeSession';
export { pxeImageWorkflow, pxeBootServerStatusWorkflow } from './pxe/pxeImage';
export { codeExecutionWorkflow } from './execution/codeExecution';
export { executionPoolWorkflow } from './execution/executionPool';
export { terminalSessionWorkflow } from './terminal/terminal';
export { computeSessionWorkflow } from './compute/computeSession';
export { computeReconcileWorkflow } from './compute/computeReconcile';
export { imageCommitWorkflow } from './compute/imageCommit';
