import type { CheckOutcome } from '../domain/selfCheck';

/** The self-check probes, one per piece of infrastructure. */
export interface SelfCheckActivities {
  pingDocker(): Promise<CheckOutcome>;
  runProbeContainer(input: { probeId: string }): Promise<CheckOutcome>;
  roundTripProbeRow(input: { probeId: string }): Promise<CheckOutcome>;
  pushAndDeleteProbeImage(input: { probeId: string }): Promise<CheckOutcome>;
}
