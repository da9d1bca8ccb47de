import { Sealer } from '../../platform/sealer';
import { ApiError } from '../platform/problems';

/** Host credentials at rest, sealed with TERMINAL_CREDENTIALS_KEY and bound to the host's id. */
export class CredentialSealer extends Sealer {
  constructor(base64Key: string | undefined) {
    super(base64Key, () => new ApiError('CredentialsKeyMissing', 'set TERMINAL_CREDENTIALS_KEY (base64 of 32 bytes) to register or use SSH hosts'));
  }
}
