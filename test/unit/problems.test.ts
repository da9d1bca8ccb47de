import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { domainFailure, errorCatalogue } from '../../domain/shared/errors';
import { ApiError, toProblem } from '../../api/platform/problems';

describe('the error catalogue', () => {
  it('keeps the seed documents\u2019 names', () => {
    for (const name of ['QuotaExceeded', 'ImageNotFound', 'TemplateNotFound', 'InsufficientResources', 'ExecutionTimeout', 'PathNotFound', 'TooManyFiles',
      'FileTooLarge', 'AppNotFound', 'RegistryPushError', 'InvalidSessionState', 'AgentNotAvailable', 'SessionLimit', 'MachineNotFound', 'ImageNotReady']) {
      expect(errorCatalogue).toHaveProperty(name);
    }
  });

  it('gives every name an error status', () => {
    for (const { status } of Object.values(errorCatalogue)) expect(status).toBeGreaterThanOrEqual(400);
  });

  it('makes named failures non-retryable, with the details a client needs', () => {
    const failure = domainFailure('InvalidSessionState', 'session is TERMINATED', { current_state: 'TERMINATED' });
    expect(failure).toMatchObject({ type: 'InvalidSessionState', nonRetryable: true, details: [{ current_state: 'TERMINATED' }] });
  });
});

describe('toProblem', () => {
  it('maps an ApiError to its status and problem body', () => {
    expect(toProblem(new ApiError('SessionLimit', 'too many', { max_active: 3 }))).toEqual({
      status: 429,
      body: expect.objectContaining({ code: 'SessionLimit', status: 429, detail: 'too many', max_active: 3, title: errorCatalogue.SessionLimit.title }),
    });
  });

  it('finds a named failure raised in an activity through the workflow failure that wraps it', () => {
    const cause = domainFailure('ImageNotFound', 'no image python:9', { image: 'python:9' });
    const activity = new ActivityFailure('activity failed', 'pullImage', '1', RetryState.NON_RETRYABLE_FAILURE, undefined, cause);
    const workflow = new WorkflowFailedError('workflow failed', activity, RetryState.NON_RETRYABLE_FAILURE);
    expect(toProblem(workflow)).toEqual({ status: 404, body: expect.objectContaining({ code: 'ImageNotFound', image: 'python:9' }) });
  });

  it('leaves an unnamed failure to the 500 path', () => {
    expect(toProblem(ApplicationFailure.create({ type: 'SomethingElse', message: 'x' }))).toBeUndefined();
    expect(toProblem(new Error('boom'))).toBeUndefined();
  });
});
