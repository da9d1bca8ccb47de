import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes every workflow carries so a person can find sessions in the
 * Web UI ("all running sessions of user X": OwnerId = 'X' AND SessionStatus = 'RUNNING').
 * The dev server registers exactly these at start (scripts/start-temporal.sh; a unit test
 * keeps the two lists equal).
 */
export const SessionKind = defineSearchAttributeKey('SessionKind', SearchAttributeType.KEYWORD);
/** One lifecycle word for every kind (domain/shared/lifecycle.ts), so one query finds what runs. */
export const SessionStatus = defineSearchAttributeKey('SessionStatus', SearchAttributeType.KEYWORD);
/** The kind's own, richer status (`ACTIVE`, `expired`, `TO`, …) behind the lifecycle word. */
export const SessionDetail = defineSearchAttributeKey('SessionDetail', SearchAttributeType.KEYWORD);
export const OwnerId = defineSearchAttributeKey('OwnerId', SearchAttributeType.KEYWORD);
export const SessionName = defineSearchAttributeKey('SessionName', SearchAttributeType.KEYWORD);
export const ChatId = defineSearchAttributeKey('ChatId', SearchAttributeType.KEYWORD);
export const MachineMac = defineSearchAttributeKey('MachineMac', SearchAttributeType.KEYWORD);
/** The language of a code execution and of its pool (`Runtime = 'python'`). */
export const Runtime = defineSearchAttributeKey('Runtime', SearchAttributeType.KEYWORD);

export const customSearchAttributes = [SessionKind, SessionStatus, SessionDetail, OwnerId, SessionName, ChatId, MachineMac, Runtime];

