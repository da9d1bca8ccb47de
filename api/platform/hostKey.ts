import { z } from 'zod';
import { parseHostKey } from '../../activities/shared/hostKeys';

/**
 * The SSH host key fields terminal hosts and boot servers share: what an admin may give, and
 * how a pin is shown.
 */
export const hostKeyInput = z.string().max(16_384).transform((value, ctx) =>
  parseHostKey(value) ?? (ctx.addIssue({ code: 'custom', message: 'an SSH host key: its fingerprint as `ssh-keygen -lf` prints it (SHA256:…), or its public key line (ssh-ed25519 AAAA…)' }), z.NEVER));

export const hostKeyView = z.object({
  fingerprint: z.string(), algorithm: z.string().nullable(), source: z.enum(['admin', 'first_use']), pinned_at: z.string(),
}).nullable();
