import pino from 'pino';

export type Logger = pino.Logger;

/** Structured JSON logs; child loggers carry workflowId / sessionId so lines can be joined. */
export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', '*.password', '*.privateKey', '*.token'], censor: '[redacted]' },
  });
}
