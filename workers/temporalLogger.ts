import type { LogLevel, LogMetadata, Logger } from '@temporalio/worker';
import type { Logger as Pino } from '../platform/logger';

const pinoLevel: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error',
};

/** Routes the Temporal SDK's own logs (including workflow and activity context) into pino. */
export class TemporalPinoLogger implements Logger {
  constructor(private readonly pino: Pino) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void { this.pino[pinoLevel[level]](meta ?? {}, message); }
  trace(message: string, meta?: LogMetadata): void { this.pino.trace(meta ?? {}, message); }
  debug(message: string, meta?: LogMetadata): void { this.pino.debug(meta ?? {}, message); }
  info(message: string, meta?: LogMetadata): void { this.pino.info(meta ?? {}, message); }
  warn(message: string, meta?: LogMetadata): void { this.pino.warn(meta ?? {}, message); }
  error(message: string, meta?: LogMetadata): void { this.pino.error(meta ?? {}, message); }
}
