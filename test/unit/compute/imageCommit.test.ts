import { registryScheme, splitReference } from '../../../activities/shared/registry';
import { convertTarget, registryBody } from '../../../domain/compute/imageCommit';

describe('convert targets', () => {
  it('push first to a tag of the commit\'s own, under the owner\'s namespace, and name the owner\'s tag apart', () => {
    const target = convertTarget('127.0.0.1:5000', 'owner-1', 'team/my-env:v1', 'c0ffee');
    expect(target).toEqual({
      repo: '127.0.0.1:5000/owner-1/team/my-env', tag: 'v1', reference: '127.0.0.1:5000/owner-1/team/my-env:v1', staging: '127.0.0.1:5000/owner-1/team/my-env:sf-c0ffee',
    });
    expect(splitReference('127.0.0.1:5000', target.staging)).toEqual({ repository: 'owner-1/team/my-env', tag: 'sf-c0ffee' });
  });
});

describe('registries', () => {
  it('take an address with a dot or a port, not a bare name the engine would send to Docker Hub', () => {
    for (const address of ['registry.example.com', 'registry:5000', '127.0.0.1:5001', 'localhost']) expect(registryBody.safeParse({ address }).success).toBe(true);
    for (const address of ['myregistry', 'https://registry.example.com', 'a/b']) expect(registryBody.safeParse({ address }).success).toBe(false);
  });

  it('are spoken to in plain HTTP on loopback and under names without a dot, in TLS under domain names', () => {
    expect(['127.0.0.1:5000', 'registry:5000', 'localhost:5000'].map(registryScheme)).toEqual(['http', 'http', 'http']);
    expect(['registry.example.com', 'ghcr.io', '10.0.0.5:5000'].map(registryScheme)).toEqual(['https', 'https', 'https']);
  });
});
