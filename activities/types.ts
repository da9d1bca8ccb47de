import type { CheckOutcome } from '../domain/selfCheck/selfCheck';

/** The self-check probes, one per piece of infrastructure. */
export interface SelfCheckActivities {
  pingDocker(): Promise<CheckOutcome>;
  runProbeContainer(input: { probeId: string }): Promise<CheckOutcome>;
  roundTripProbeRow(input: { probeId: string }): Promise<CheckOutcome>;
  pushAndDeleteProbeImage(input: { probeId: string }): Promise<CheckOutcome>;
}

/** The terminal sessions' read model (activities/terminal.ts). */
export interface TerminalActivities {
  recordTerminalSessionOpened(input: {
    sessionId: string; ownerId: string; hostId: string; hostName: string; mode: string; tokenHash: string;
    createdAt: string; expiresAt: string; idleTimeoutSeconds: number;
  }): Promise<void>;
  recordTerminalHeartbeat(input: { sessionId: string; lastSeenAt: string }): Promise<void>;
  recordTerminalToken(input: { sessionId: string; tokenHash: string }): Promise<void>;
  recordTerminalSessionEnded(input: { sessionId: string; status: 'closed' | 'expired'; reason: string; endedAt: string }): Promise<void>;
}
