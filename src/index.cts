/**
 * The CommonJS entry (`require('taskmill')`). It returns the instance that
 * `import` loaded when there is one (see the end of index.ts); otherwise it
 * require()s the ESM build, which Node ≥ 20.19 does natively.
 */
import url = require('node:url');

type Taskmill = typeof import('./index.js');
type SharedInstance = typeof import('./shared/instance-key.js');

const { sharedInstanceKey } = require('./shared/instance-key.js') as SharedInstance;
const key = sharedInstanceKey(url.pathToFileURL(__filename).href);
const taskmill = ((globalThis as Record<symbol, unknown>)[key] as Taskmill | undefined) ?? (require('./index.js') as Taskmill);

export = taskmill;
