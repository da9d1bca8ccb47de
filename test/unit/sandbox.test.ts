import { canonicalChatId, isExpired, makeSandboxWorkflowId, sandboxContainerName } from '../../domain/sandbox/sandbox';

describe('canonicalChatId', () => {
  it('maps the 32-hex form and any letter case to one lowercase hyphenated UUID', () => {
    const canonical = '11111111-1111-1111-1111-111111111111';
    expect(canonicalChatId('11111111111111111111111111111111')).toBe(canonical);
    expect(canonicalChatId(canonical)).toBe(canonical);
    expect(canonicalChatId('ABCDEF00-1111-2222-3333-444455556666')).toBe('abcdef00-1111-2222-3333-444455556666');
    expect(canonicalChatId('abcdef00111122223333444455556666')).toBe('abcdef00-1111-2222-3333-444455556666');
  });

  it('rejects anything that is not a UUID', () => {
    for (const raw of ['', 'chat-1', '1111111111111111111111111111111', '111111111111111111111111111111111', '11111111-1111-1111-1111-11111111111g', '1111-11111111-1111-1111-111111111111', '{11111111-1111-1111-1111-111111111111}']) {
      expect(canonicalChatId(raw)).toBeUndefined();
    }
  });

  it('gives both forms the same workflow id', () => {
    expect(makeSandboxWorkflowId(canonicalChatId('11111111111111111111111111111111')!)).toBe(makeSandboxWorkflowId(canonicalChatId('11111111-1111-1111-1111-111111111111')!));
  });
});

describe('isExpired', () => {
  const now = Date.parse('2026-04-02T12:00:00Z');

  it('counts a sandbox expiring exactly now as expired, as the seed does', () => {
    expect(isExpired({ expiresAt: '2026-04-02T12:00:00.000Z' }, now)).toBe(true);
  });

  it('counts one that expired a second ago as expired, and one expiring in the future as active', () => {
    expect(isExpired({ expiresAt: '2026-04-02T11:59:59.000Z' }, now)).toBe(true);
    expect(isExpired({ expiresAt: '2026-04-02T12:00:00.001Z' }, now)).toBe(false);
  });
});

describe('sandboxContainerName', () => {
  it('derives the container name from the session id alone, so a retried create finds the same container', () => {
    expect(sandboxContainerName('00000000-0000-0000-0000-000000000003')).toBe('sf-sandbox-00000000-0000-0000-0000-000000000003');
  });
});
