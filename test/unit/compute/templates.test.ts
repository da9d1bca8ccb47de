import { mergeTemplate } from '../../../domain/compute/templates';

describe('mergeTemplate', () => {
  const template = { image: 'python:3.11', resources: { cpu: '2', memory: '4G' }, env: { A: '1', B: '2' }, vfolders: ['home', 'data'], priority: 5 };

  it('merges objects key by key: an override of cpu keeps the template\'s memory', () => {
    expect(mergeTemplate(template, { resources: { cpu: '8' } })).toEqual({ ...template, resources: { cpu: '8', memory: '4G' } });
  });

  it('replaces arrays and scalars whole', () => {
    expect(mergeTemplate(template, { vfolders: ['scratch'], priority: 9, session_name: 'custom-name' })).toEqual({ ...template, vfolders: ['scratch'], priority: 9, session_name: 'custom-name' });
  });

  it('removes a key given null, at any depth', () => {
    expect(mergeTemplate(template, { env: { A: null }, priority: null })).toEqual({ image: 'python:3.11', resources: template.resources, env: { B: '2' }, vfolders: template.vfolders });
  });

  it('changes neither input, and ignores a __proto__ key', () => {
    const before = JSON.stringify(template);
    const overrides = JSON.parse('{"__proto__": {"polluted": true}, "resources": {"gpu": "1"}}') as Record<string, unknown>;
    const merged = mergeTemplate(template, overrides);
    expect(JSON.stringify(template)).toBe(before);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect((merged as { polluted?: boolean }).polluted).toBeUndefined();
    expect(merged.resources).toEqual({ cpu: '2', memory: '4G', gpu: '1' });
  });

  it('replaces a scalar with an object, dropping the object\'s null keys', () => {
    expect(mergeTemplate({ resources: 'small' }, { resources: { cpu: '1', memory: null } })).toEqual({ resources: { cpu: '1' } });
  });
});
