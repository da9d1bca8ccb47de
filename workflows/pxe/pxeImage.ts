import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import { pxeBootServerStatusKind, pxeImageKind } from '../../domain/pxe/kind';
import { upsertFinalStatus } from '../shared/status';
import type { AdapterStatus, PxeActivities } from '../../activities/pxe/pxe';
import { describeFailure } from '../../domain/shared/failures';

// Converting a large image takes long but heartbeats every progress line: a worker that died
// is noticed within the heartbeat timeout and the conversion starts over on another attempt.
const converter = proxyActivities<PxeActivities>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '2s', maximumAttempts: 3, nonRetryableErrorTypes: ['NotFound', 'ImageNotFound', 'BootServerCommandFailed'] },
});
// A status row update or a status probe is quick; the answer is wanted now, not after retries.
const quick = proxyActivities<PxeActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '200ms', maximumAttempts: 3, nonRetryableErrorTypes: ['NotFound', 'BootServerCommandFailed'] },
});

/**
 * Registering an image: check the file on its boot server and convert it to raw when it is
 * not raw already. The image row ends READY or ERROR with the cause.
 */
export async function pxeImageWorkflow({ imageId }: { imageId: string }): Promise<{ status: 'READY' | 'ERROR'; error?: string }> {
  try {
    const result = await converter.prepareImage({ imageId });
    setCurrentDetails(result.status === 'READY' ? 'Image READY' : `Image ERROR: ${result.error}`);
    upsertFinalStatus(pxeImageKind, result.status);
    return result;
  } catch (err) {
    const { message: error } = describeFailure(err);
    await quick.markImageFailed({ imageId, error });
    setCurrentDetails(`Image ERROR: ${error}`);
    upsertFinalStatus(pxeImageKind, 'ERROR');
    return { status: 'ERROR', error };
  }
}

/** The DHCP and TFTP adapters of one boot server, probed over SSH (the api never dials a boot server). */
export async function pxeBootServerStatusWorkflow({ bootServerId }: { bootServerId: string }): Promise<AdapterStatus> {
  try {
    const status = await quick.checkBootServerAdapters({ bootServerId });
    upsertFinalStatus(pxeBootServerStatusKind, 'PROBED');
    return status;
  } catch (err) {
    upsertFinalStatus(pxeBootServerStatusKind, 'UNREACHABLE');
    throw err;
  }
}
