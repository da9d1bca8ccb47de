import pino from 'pino';

export type Logger = pino.Logger;

/** What a URL's query may carry that a log must not: a terminal's connect token (`/ws?token=`). */
const secretQueryParameters = /([?&](?:token|access_token|api_key|key)=)[^&#]*/gi;

/** The URL as a log line may show it: secret query values replaced. */
export function redactUrl(url: string): string {
  return url.replace(secretQueryParameters, '$1[redacted]');
}

/** Structured JSON logs; child loggers carry workflowId / sessionId so lines can be joined. */
export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', '*.password', '*.privateKey', '*.token'], censor: '[redacted]' },
  }, destination);
}
