import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';

/**
 * Commits of a compute session's main kernel (seed 000 actions 12, 23, 27; section 10): a
 * `commit` snapshots the kernel's container into an image on its node; a `convert` also tags it
 * for a registry, pushes it and registers it as the owner's image, so that new sessions start
 * from it. Both run as an imageCommit child workflow of the session's workflow.
 */
/** Images of their own a user may hold when neither their policy nor COMPUTE_DEFAULT_MAX_CUSTOMIZED_IMAGES says. */
export const defaultMaxCustomizedImages = 10;

export const commitKinds = ['commit', 'convert'] as const;
export type CommitKind = (typeof commitKinds)[number];
export type CommitStatus = 'ongoing' | 'finished' | 'failed' | 'cancelled';
export type CommitPhase = 'committing' | 'tagging' | 'pushing' | 'registering' | 'done';

/** Bytes pushed so far of one layer, and its size (as the engine reports them). */
export interface LayerProgress {
  current: number;
  total: number;
}

export interface CommitProgress {
  phase: CommitPhase;
  /** By layer id: what the engine has pushed of each layer (a layer the registry has already is current = total). */
  layers: Record<string, LayerProgress>;
  bytesPushed: number;
  bytesTotal: number;
  /** The committed image's id on the node, once made. */
  imageId?: string;
}

export const emptyProgress = (): CommitProgress => ({ phase: 'committing', layers: {}, bytesPushed: 0, bytesTotal: 0 });

/** A registry as a push needs it: the name (for errors and the credentials' row) and host:port. */
export interface RegistryTarget {
  name: string;
  address: string;
}

export interface ImageCommitInput {
  commitId: string;
  sessionId: string;
  ownerId: string;
  kind: CommitKind;
  /** The main kernel: its container, node and that node's task queue. */
  containerId: string;
  node: string;
  taskQueue: string;
  /** convert: the name the owner gives the image (name:tag) and where it goes. */
  imageName?: string;
  registry?: RegistryTarget;
  agentTimeoutSeconds: number;
}

export interface ImageCommitResult {
  status: CommitStatus;
  imageId?: string;
  reference?: string;
  error?: { code: string; message: string };
}

/** What the api asks the session workflow to start. */
export interface ImageCommitRequest {
  commitId: string;
  kind: CommitKind;
  imageName?: string;
  registry?: RegistryTarget;
}

/** Starts the commit's child workflow and answers once it has started (InvalidSessionState unless RUNNING). */
export const startImageCommitUpdate = defineUpdate<{ workflowId: string }, [ImageCommitRequest]>('startImageCommit');
/** The commit's progress as the workflow knows it now. */
export const imageCommitProgressQuery = defineQuery<CommitProgress>('imageCommitProgress');

/** The image a commit leaves on the node: one tag per commit, so a retried commit finds its image. */
export function commitImageTag(commitId: string): { repo: string; tag: string } {
  return { repo: 'sessionflow-commit', tag: commitId };
}

export interface ConvertTarget {
  repo: string;
  tag: string;
  /** `repo:tag`: the owner's image, moved there only once the whole image is in the registry. */
  reference: string;
  /** `repo:sf-<commit id>`: where the push goes first, so a cancelled or failed push never touches the owner's tag. */
  staging: string;
}

/** Where a convert pushes: under the owner's id in the registry, so two users' `my-env:v1` never meet. */
export function convertTarget(registryAddress: string, ownerId: string, imageName: string, commitId = ''): ConvertTarget {
  const colon = imageName.lastIndexOf(':');
  const repo = `${registryAddress}/${ownerId}/${imageName.slice(0, colon)}`;
  const tag = imageName.slice(colon + 1);
  return { repo, tag, reference: `${repo}:${tag}`, staging: `${repo}:${stagingTag(commitId)}` };
}

export const stagingTag = (commitId: string) => `sf-${commitId}`;

// Docker's reference grammar (distribution/reference): path components of lowercase letters and
// digits joined by one '.', one or two '_', or dashes; a tag of word characters, '.' and '-'.
const pathComponent = '[a-z0-9]+(?:(?:\\.|_{1,2}|-+)[a-z0-9]+)*';
export const convertImageNamePattern = new RegExp(`^${pathComponent}(?:/${pathComponent})*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`);
/** At most this long, so that with a registry address and an owner id the reference stays under Docker's 255. */
const maxImageNameLength = 160;

export const convertImageNameField = z.string().max(maxImageNameLength, `at most ${maxImageNameLength} characters`)
  .regex(convertImageNamePattern, 'an image reference name:tag such as my-custom-env:v1 (lowercase path components, a tag)');
export const registryNameField = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, '1-63 lowercase letters, digits, _ . -');

export const convertBody = z.strictObject({ image_name: convertImageNameField, registry: registryNameField.default('local') });

export const registryBody = z.strictObject({
  // A name with neither a dot nor a port is a Docker Hub path to the engine, not a registry.
  address: z.string().max(255).regex(/^[A-Za-z0-9.-]+(:\d+)?$/, 'host:port')
    .refine((address) => address.includes('.') || address.includes(':') || address === 'localhost', 'a registry address has a dot or a port (e.g. registry.example.com, registry:5000)'),
  username: z.string().min(1).max(255).optional(),
  password: z.string().min(1).max(1024).optional(),
}).refine((body) => (body.username === undefined) === (body.password === undefined), { message: 'username and password go together', path: ['password'] });
