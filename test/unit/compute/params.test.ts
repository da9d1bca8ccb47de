import { createFromTemplateBody, createSessionBody, sessionParamsFromTemplate, imageBody, modifySessionBody, resourcePolicyBody, templateParamsBody } from '../../../domain/compute/params';
import { mergeTemplate } from '../../../domain/compute/templates';

const fieldsOf = (result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) => (result.error?.issues ?? []).map((issue) => issue.path.join('.'));

describe('the create-from-params body', () => {
  it('takes the seed\'s single GPU session with its defaults filled in', () => {
    const params = createSessionBody.parse({
      image_name: 'tensorflow:2.10-gpu', session_name: 'my-tf-session', resources: { cpu: '4', memory: '16G', gpu: '1' }, vfolders: ['home', 'data'], scaling_group: 'gpu-cluster',
    });
    expect(params).toEqual({
      image: 'tensorflow:2.10-gpu', session_name: 'my-tf-session', resources: { cpu: 4000, memory: 16 * 2 ** 30, gpu: 1 }, env: {}, secret_env: {}, vfolders: ['home', 'data'],
      scaling_group: 'gpu-cluster', enqueue_only: false, cluster_mode: 'single-node', cluster_size: 1, dependencies: [], priority: 0, bootstrap_timeout: 1800,
    });
  });

  it('leaves absent resources to the image and reads mpi as a single-node cluster', () => {
    const params = createSessionBody.parse({ image: 'mpi-python:latest', cluster_mode: 'mpi', cluster_size: 4 });
    expect(params.resources).toEqual({});
    expect(params).toMatchObject({ cluster_mode: 'single-node', cluster_size: 4 });
  });

  it('names every bad field', () => {
    const result = createSessionBody.safeParse({
      image: 'no-tag', session_name: '-bad', env: { 'NOT A NAME': 'x', SF_CLUSTER_ROLE: 'main' }, cluster_mode: 'ring', cluster_size: 65,
      dependencies: ['not-a-uuid'], vfolders: ['a', 'a'], starts_at: 'tomorrow', max_wait: 0, extra: true,
    });
    expect(fieldsOf(result).sort()).toEqual(['', 'cluster_mode', 'cluster_size', 'dependencies.0', 'env.NOT A NAME', 'env.SF_CLUSTER_ROLE', 'image', 'max_wait', 'session_name', 'starts_at', 'vfolders'].sort());
  });

  it('refuses a variable that is both plain and secret, and too many secrets', () => {
    expect(fieldsOf(createSessionBody.safeParse({ image: 'python:3.11', env: { API_KEY: 'a' }, secret_env: { API_KEY: 'b' } }))).toEqual(['secret_env.API_KEY']);
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`S${i}`, 'x']));
    expect(fieldsOf(createSessionBody.safeParse({ image: 'python:3.11', secret_env: many }))).toEqual(['secret_env']);
  });

  it('accepts the seed\'s environment and bootstrap script', () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    const params = createSessionBody.parse({
      image: 'python:3.11', env: { CUDA_VISIBLE_DEVICES: '0', PYTHONPATH: '/app' }, secret_env: { API_KEY: 'secret-value' },
      bootstrap_script: 'pip install -r requirements.txt\npython setup.py', starts_at: tomorrow, max_wait: 60, idle_timeout: 600, max_lifetime: 3600,
    });
    expect(params).toMatchObject({ secret_env: { API_KEY: 'secret-value' }, starts_at: tomorrow, max_wait: 60 });
  });
});

describe('create from a template', () => {
  const template = templateParamsBody.parse({ image: 'python:3.11', resources: { cpu: '2', memory: '4G' }, env: { A: '1' } });

  it('validates the merge of the template and the overrides with the create schema', () => {
    const body = createFromTemplateBody.parse({ template_id: 'basic-python', overrides: { resources: { cpu: '8' } } });
    expect(createSessionBody.parse(mergeTemplate(template, body.overrides)).resources).toEqual({ cpu: 8000, memory: 4 * 2 ** 30 });
    expect(fieldsOf(createSessionBody.safeParse(mergeTemplate(template, { resources: { memory: 'huge' } })))).toEqual(['resources.memory']);
  });

  it('merges and validates in one step, naming a bad or missing field under body.overrides', () => {
    expect(sessionParamsFromTemplate(template, { session_name: 'custom-name' })).toMatchObject({ success: true, data: { image: 'python:3.11', session_name: 'custom-name', resources: { cpu: 2000 } } });
    expect(sessionParamsFromTemplate(template, { image: null, cluster_size: 99 })).toEqual({
      success: false, errors: [{ field: 'body.overrides.image', message: expect.any(String) }, { field: 'body.overrides.cluster_size', message: expect.any(String) }],
    });
  });

  it('keeps template params as written, refusing a field that could never be valid', () => {
    expect(template.resources).toEqual({ cpu: '2', memory: '4G' });
    expect(templateParamsBody.safeParse({ session_name: 'x' }).success).toBe(true);
    expect(fieldsOf(templateParamsBody.safeParse({ resources: { cpu: 'x' }, unknown: 1 })).sort()).toEqual(['', 'resources.cpu']);
    expect(fieldsOf(createFromTemplateBody.safeParse({ template_id: 'Bad Id' }))).toEqual(['template_id']);
  });
});

describe('admin bodies', () => {
  it('parse an image, a policy and a modify request', () => {
    expect(imageBody.parse({ name: 'python:3.11', reference: '127.0.0.1:5000/sessionflow/kernel-python:bookworm', resources: { cpu: '1', memory: '512M' } }).resources).toEqual({ cpuMillis: 1000, memoryBytes: 512 * 2 ** 20, gpu: 0 });
    expect(resourcePolicyBody.parse({ max_sessions: 3, resources: { cpu: '4', memory: '8G', gpu: '0' } })).toEqual({ max_sessions: 3, resources: { cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, gpu: 0 } });
    expect(fieldsOf(resourcePolicyBody.safeParse({ max_sessions: -1, resources: { cpu: '4' } })).sort()).toEqual(['max_sessions', 'resources.memory']);
    expect(fieldsOf(modifySessionBody.safeParse({}))).toEqual(['']);
    expect(modifySessionBody.parse({ idle_timeout: 0 })).toEqual({ idle_timeout: 0 });
  });
});

describe('what the store could not hold or a template must not show', () => {
  it('refuses NUL in env values and the bootstrap script, a start more than a year ahead, and secrets in a template', () => {
    const result = createSessionBody.safeParse({ image: 'python:3.11', env: { A: 'x\u0000y' }, bootstrap_script: 'echo\u0000', starts_at: new Date(Date.now() + 400 * 86_400_000).toISOString() });
    expect(result.success ? [] : result.error.issues.map((issue) => issue.path.join('.')).sort()).toEqual(['bootstrap_script', 'env.A', 'starts_at']);
    const template = templateParamsBody.safeParse({ image: 'python:3.11', secret_env: { DB_PASSWORD: 'hunter2' } });
    expect(template.success ? [] : template.error.issues.map((issue) => issue.path.join('.'))).toEqual(['secret_env']);
  });
});
