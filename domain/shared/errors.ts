import { ApplicationFailure } from '@temporalio/common';

/**
 * The one catalogue of named errors. Activities and workflows fail with these names as
 * non-retryable ApplicationFailure types; the api answers each with this HTTP status and an
 * application/problem+json body whose `code` is the name. Names from the seed documents are
 * kept verbatim so clients of the original systems recognise them.
 */
export const errorCatalogue = {
  // Edge errors: the request itself is wrong.
  ValidationFailed: { status: 400, title: 'The request is not valid' },
  Unauthenticated: { status: 401, title: 'A valid API key is required' },
  Forbidden: { status: 403, title: 'This action needs another role' },
  NotFound: { status: 404, title: 'No such resource' },
  RouteNotFound: { status: 404, title: 'No such route' },
  UnsupportedMediaType: { status: 415, title: 'The request body has an unsupported type' },
  PayloadTooLarge: { status: 413, title: 'The request body is too large' },

  // Compute sessions (seed 000).
  QuotaExceeded: { status: 403, title: 'The resource quota would be exceeded' },
  ImageNotFound: { status: 404, title: 'No such image' },
  TemplateNotFound: { status: 404, title: 'No such session template' },
  InsufficientResources: { status: 503, title: 'No node has the resources the session asks for' },
  ExecutionTimeout: { status: 408, title: 'The execution did not finish in time' },
  RunNotFound: { status: 404, title: 'No such run in the kernel' },
  RunNotWaitingInput: { status: 409, title: 'The run is not waiting for input' },
  PathNotFound: { status: 404, title: 'No such path in the session' },
  TooManyFiles: { status: 400, title: 'Too many files in one request' },
  FileTooLarge: { status: 413, title: 'A file is larger than allowed' },
  PathOutsideWorkDir: { status: 400, title: 'The path leads outside the session\'s work directory' },
  DownloadTooLarge: { status: 413, title: 'The download is larger than allowed' },
  AppNotFound: { status: 404, title: 'No such in-session service' },
  ServiceNotFound: { status: 404, title: 'No such service running in the session' },
  ServiceStartFailed: { status: 502, title: 'The service did not start' },
  RegistryPushError: { status: 502, title: 'The registry refused the image' },
  InvalidSessionState: { status: 409, title: 'The session is not in a state that allows this' },
  AgentNotAvailable: { status: 503, title: 'The compute node does not answer' },
  KernelFailed: { status: 502, title: 'A kernel of the session could not be created or run' },
  BootstrapFailed: { status: 422, title: 'The session\'s bootstrap script failed' },
  SecretsKeyMissing: { status: 503, title: 'No key to seal or open compute secrets is configured' },
  SessionNameTaken: { status: 409, title: 'A live session of yours has this name' },
  VFolderInUse: { status: 409, title: 'A live session mounts this vfolder' },
  ScalingGroupInUse: { status: 409, title: 'Nodes or live sessions use this scaling group' },

  // Code execution (seed 001).
  PoolExhausted: { status: 429, title: 'Every execution container is busy' },
  ExecutionQuotaExceeded: { status: 429, title: 'Your share of the execution containers is in use' },
  RuntimeNotFound: { status: 400, title: 'No such runtime' },
  ContainerLost: { status: 503, title: 'The execution container disappeared' },
  ExecutionFailed: { status: 500, title: 'The execution could not be carried out' },

  // Chat sandboxes (seed 003).
  SandboxQuotaExceeded: { status: 429, title: 'The user holds as many live sandboxes as allowed' },
  SandboxLost: { status: 409, title: 'The sandbox\'s container died; ensure a new sandbox' },
  SandboxCreateFailed: { status: 503, title: 'The sandbox container could not be created' },

  // Terminals (seed 002).
  SessionLimit: { status: 429, title: 'Too many active sessions' },
  SessionNotFound: { status: 404, title: 'No such session' },
  HostNotFound: { status: 404, title: 'No such host' },
  HostNameTaken: { status: 409, title: 'A host with this name exists' },
  HostInUse: { status: 409, title: 'The host has active terminal sessions' },
  CredentialsKeyMissing: { status: 503, title: 'No key to seal or open host credentials is configured' },

  // SSH hosts: terminal hosts and boot servers.
  HostKeyMismatch: { status: 502, title: 'The host presented another SSH host key than the pinned one' },
  HostKeyUnverified: { status: 409, title: 'The host has no pinned SSH host key' },
  HostUnreachable: { status: 502, title: 'The host could not be reached to read its SSH host key' },

  // PXE boot sessions (seed 004).
  MachineNotFound: { status: 400, title: 'No such machine' },
  ImageNotReady: { status: 400, title: 'The image is not ready' },
  MachineBusy: { status: 409, title: 'The machine is already in an active session' },
  BootServerCommandFailed: { status: 502, title: 'A command on the boot server failed' },
  DhcpConfigInvalid: { status: 502, title: 'dhcpd rejected the rendered hosts file' },
  MachineAddressTaken: { status: 409, title: 'Another machine already has this MAC or IP address' },

  // The platform itself.
  RateLimited: { status: 429, title: 'Too many requests with this API key' },
  TooManyTransfers: { status: 429, title: 'Too many file transfers of this user going on' },
  UserNotFound: { status: 404, title: 'No such user' },
  UserNameTaken: { status: 409, title: 'A user with this name exists' },
  UserDisabled: { status: 409, title: 'The user is disabled' },
  ApiKeyNotFound: { status: 404, title: 'No such API key' },
  SelfLockout: { status: 409, title: 'This would lock you out' },
  DependencyUnavailable: { status: 503, title: 'A service sessionflow depends on does not answer' },
  Internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalogue, value);
}

/**
 * A named, non-retryable failure for activities and workflow update handlers: retrying a
 * user error cannot help, and an update handler that throws a plain Error would retry its
 * workflow task forever.
 */
export function domainFailure(code: ErrorCode, message: string, details?: Record<string, unknown>): ApplicationFailure {
  return ApplicationFailure.create({ type: code, message, nonRetryable: true, details: details ? [details] : undefined });
}
