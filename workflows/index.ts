// Everything the worker bundles. Workflow code only: no activities, no Node built-ins.
export { selfCheckWorkflow } from './selfCheck';
export { terminalSessionWorkflow } from './terminal';
