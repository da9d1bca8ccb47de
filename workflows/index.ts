// Everything the worker bundles. Workflow code only: no activities, no Node built-ins.
export { selfCheckWorkflow } from './selfCheck';
export { pxeSessionWorkflow } from './pxeSession';
export { pxeImageWorkflow, pxeBootServerStatusWorkflow } from './pxeImage';
