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
  it('reads a bearer token', () => {
    expect(credentialFrom('Bearer sf_abc')).toBe('sf_abc');
    expect(credentialFrom('bearer   sf_abc')).toBe('sf_abc');
  });

  it('reads the password of HTTP Basic, as Piston clients send it', () => {
    expect(credentialFrom(`Basic ${Buffer.from('user:sf_key:with:colons').toString('base64')}`)).toBe('sf_key:with:colons');
  });

  it('refuses anything else', () => {
    expect(credentialFrom(undefined)).toBeUndefined();
    expect(credentialFrom('Bearer')).toBeUndefined();
    expect(credentialFrom('Token sf_abc')).toBeUndefined();
    expect(credentialFrom(`Basic ${Buffer.from('user:').toString('base64')}`)).toBeUndefined();
  });
});
