import { randomBytes } from 'node:crypto';
import { redactUrl } from '../../platform/logger';
import { CredentialSealer } from '../../api/terminal/credentials';
import { HeartbeatThrottle } from '../../api/terminal/heartbeatThrottle';
import { sessionLimitBody } from '../../api/terminal/sessionLimit';
import { parseUtcTimestamp } from '../../api/terminal/sessions';
import { generateSessionId, generateSessionToken, hashSessionToken, verifySessionToken } from '../../api/terminal/tokens';
import { closeReasons, makeTerminalWorkflowId, terminalModes, terminalStatuses } from '../../domain/terminal/terminal';

describe('terminal constants', () => {
  it('keep the seed\'s statuses, close reasons and modes verbatim', () => {
    expect(terminalStatuses).toEqual(['active', 'closed', 'expired']);
    expect(closeReasons).toEqual(['user_close', 'ttl', 'idle', 'client_lost']);
    expect(terminalModes).toEqual(['embedded', 'popout']);
    expect(makeTerminalWorkflowId('ab')).toBe('terminal/ab');
  });
});

describe('session ids and tokens', () => {
  it('makes unique 64-hex ids', () => {
    const [a, b] = [generateSessionId(), generateSessionId()];
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
  });

  it('makes tokens of 32 random bytes whose SHA-256 hex verifies, and nothing else does', () => {
    const { token, tokenHash } = generateSessionToken();
    expect(token.length).toBeGreaterThan(32);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(tokenHash).toBe(hashSessionToken(token));
    expect(verifySessionToken(token, tokenHash)).toBe(true);
    expect(verifySessionToken('wrong-token', tokenHash)).toBe(false);
    expect(verifySessionToken('', tokenHash)).toBe(false);
    expect(verifySessionToken(token, 'not-a-hash')).toBe(false);
  });
});

describe('CredentialSealer', () => {
  const key = randomBytes(32).toString('base64');

  it('seals with AES-256-GCM so the plaintext is not in the stored bytes, and opens it again', () => {
    const sealer = new CredentialSealer(key);
    const sealed = sealer.seal('{"type":"password","password":"hunter2"}', 'host-1');
    expect(sealed.toString('latin1')).not.toContain('hunter2');
    expect(sealer.open(sealed, 'host-1')).toBe('{"type":"password","password":"hunter2"}');
  });

  it('refuses to open under another key, for another host, or after tampering', () => {
    const sealed = new CredentialSealer(key).seal('secret', 'host-1');
    expect(() => new CredentialSealer(randomBytes(32).toString('base64')).open(sealed, 'host-1')).toThrow();
    expect(() => new CredentialSealer(key).open(sealed, 'host-2')).toThrow();
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1]! ^= 1;
    expect(() => new CredentialSealer(key).open(tampered, 'host-1')).toThrow();
  });

  it('names the missing key instead of failing obscurely', () => {
    expect(() => new CredentialSealer(undefined).seal('secret', 'h')).toThrow(expect.objectContaining({ code: 'CredentialsKeyMissing' }));
  });
});

describe('sessionLimitBody', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const session = (id: string, hostId: string, ageSeconds: number, seenSeconds: number) => ({
    id, host_id: hostId, host_name: `name-${hostId}`, mode: 'embedded', created_at: new Date(now - ageSeconds * 1000), last_seen_at: new Date(now - seenSeconds * 1000),
  });

  it('lists the active sessions with ages and offers to close the oldest or a named one', () => {
    const body = sessionLimitBody([session('s1', 'h1', 300, 10), session('s2', 'h2', 60, 5)], 2, 'h3', now);
    expect(body).toEqual({
      error: 'SESSION_LIMIT', message: expect.any(String), max_active: 2, current_count: 2,
      active_sessions: [
        { session_id: 's1', host_id: 'h1', host_name: 'name-h1', mode: 'embedded', age_seconds: 300, last_seen_seconds: 10 },
        { session_id: 's2', host_id: 'h2', host_name: 'name-h2', mode: 'embedded', age_seconds: 60, last_seen_seconds: 5 },
      ],
      suggested_actions: ['close_oldest', 'close_session:s1', 'close_session:s2'],
      can_reuse: false, reusable_session_id: null,
    });
  });

  it('offers a session on the requested host for reuse', () => {
    const body = sessionLimitBody([session('s1', 'h1', 300, 10), session('s2', 'h2', 60, 5)], 2, 'h2', now);
    expect(body).toMatchObject({ can_reuse: true, reusable_session_id: 's2' });
    expect(body.suggested_actions[0]).toBe('reuse_existing');
  });
});

describe('parseUtcTimestamp', () => {
  it('reads a naive time as UTC and honours an explicit zone', () => {
    expect(parseUtcTimestamp('2025-01-01T12:00:00')?.toISOString()).toBe('2025-01-01T12:00:00.000Z');
    expect(parseUtcTimestamp('2025-01-01T12:00:00Z')?.toISOString()).toBe('2025-01-01T12:00:00.000Z');
    expect(parseUtcTimestamp('2025-01-01T14:00:00+02:00')?.toISOString()).toBe('2025-01-01T12:00:00.000Z');
    expect(parseUtcTimestamp('yesterday')).toBeUndefined();
  });
});

describe('redactUrl', () => {
  it('hides secret query values and keeps the rest of the URL', () => {
    expect(redactUrl('/api/v1/terminals/ab/ws?token=s3cret&cols=80')).toBe('/api/v1/terminals/ab/ws?token=[redacted]&cols=80');
    expect(redactUrl('/x?cols=80&TOKEN=s3cret#frag')).toBe('/x?cols=80&TOKEN=[redacted]#frag');
    expect(redactUrl('/x?api_key=k&tokens=kept')).toBe('/x?api_key=[redacted]&tokens=kept');
    expect(redactUrl('/api/v1/terminals')).toBe('/api/v1/terminals');
  });
});

describe('HeartbeatThrottle', () => {
  it('lets one heartbeat per session through per interval, each session on its own clock', () => {
    let now = 1_000;
    const throttle = new HeartbeatThrottle(1000, () => now);
    expect([throttle.admit('a'), throttle.admit('a'), throttle.admit('b')]).toEqual([true, false, true]);
    now += 999;
    expect(throttle.admit('a')).toBe(false);
    now += 1;
    expect([throttle.admit('a'), throttle.admit('a')]).toEqual([true, false]);
  });

  it('forgets sessions once their interval has passed', () => {
    let now = 0;
    const throttle = new HeartbeatThrottle(1000, () => now);
    for (let i = 0; i < 1000; i++) throttle.admit(`s${i}`);
    now += 5000;
    throttle.admit('late');
    expect((throttle as unknown as { admitted: Map<string, number> }).admitted.size).toBe(1);
  });
});
