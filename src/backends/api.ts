/**
 * `taskmill/backends`: what a backend author needs. Extend BaseQueue, keep
 * the six methods' seed meaning (write, read, ack, flush, length, close) and
 * the extra ones the consumer relies on, and run `runContractSuite` from
 * `taskmill/testing` against it.
 */
export { BaseQueue, type FailedMessage, type QueueMessage, type QueueOptions, type QueueStats, type ResultRecord, type WriteOptions } from './base.js';
export { checkPriority, MAX_PRIORITY, MIN_PRIORITY, validateQueueName } from './base.js';
export { checkStartGates, reserveAt, type ConcurrencyGate, type RateGate, type StartDecision, type StartGates, type StartOutcome } from './base.js';
export { checkKeyTtl, checkUniqueKey, type WriteOnceOptions, type WriteOnceResult } from './base.js';
export { MAX_EVENTS, type CancelOutcome, type CancelRequest, type EventPage, type LoggedEvent, type QueueControl } from './control.js';
export { redactUrl, redactText } from '../shared/config.js';
export { ConfigError, LeaseLostError, QueueConnectionError, TaskmillError } from '../shared/errors.js';
