/**
 * Whether this thread or process is a pool's child (set by ./child.ts before
 * it imports any command module): createConsumer refuses to start there, so
 * a module that defines commands and also starts a consumer cannot start one
 * per thread.
 */
export const poolRole = { child: false };
