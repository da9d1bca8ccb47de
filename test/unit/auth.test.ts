import { credentialFrom, generateApiKey, hashApiKey } from '../../api/platform/auth';

describe('API keys', () => {
  it('are stored as the SHA-256 hex of the key', () => {
    expect(hashApiKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('carry 32 random bytes and never repeat', () => {
    const keys = new Set(Array.from({ length: 100 }, generateApiKey));
    expect(keys.size).toBe(100);
    for (const key of keys) expect(Buffer.from(key.slice(3), 'base64url')).toHaveLength(32);
  });
});

describe('credentialFrom', () => {
  const basic = `Basic ${Buffer.from('user:sf_key:with:colons').toString('base64')}`;

  it('reads a bearer token', () => {
    expect(credentialFrom('Bearer sf_abc', { basic: false })).toBe('sf_abc');
    expect(credentialFrom('bearer   sf_abc', { basic: false })).toBe('sf_abc');
  });

  it('reads the password of HTTP Basic where the route allows it, as Piston clients send it', () => {
    expect(credentialFrom(basic, { basic: true })).toBe('sf_key:with:colons');
  });

  it('ignores HTTP Basic where the route does not allow it: a browser replays Basic cross-site', () => {
    expect(credentialFrom(basic, { basic: false })).toBeUndefined();
  });

  it('refuses anything else', () => {
    expect(credentialFrom(undefined, { basic: true })).toBeUndefined();
    expect(credentialFrom('Bearer', { basic: true })).toBeUndefined();
    expect(credentialFrom('Token sf_abc', { basic: true })).toBeUndefined();
    expect(credentialFrom(`Basic ${Buffer.from('user:').toString('base64')}`, { basic: true })).toBeUndefined();
  });
});
