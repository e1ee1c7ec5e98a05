/** Pipeline configuration: loading, `${VAR}` expansion, validation against component specs. */
export { loadPipeline, validatePipelineFile, validatePipelineText } from './load.js';
export type { ComponentConfig, LoadOptions, PipelineConfig, Validation } from './load.js';
export { ConfigError, formatProblem } from './problems.js';
export type { ConfigProblem } from './problems.js';
export { importComponent, isComponentModule, isModuleSpecifier, makeResolver } from './resolve.js';
export type { BuiltinComponents, ComponentResolver, ResolveFailure } from './resolve.js';
export { describeOption, validateComponentOptions } from './options.js';
export { expandVariables } from './expand.js';
export type { Expansion } from './expand.js';
export { formatDuration, formatSize, parseDuration, parseSize, parseTime } from './units.js';
