/**
 * @sipd/proxy: the sipd application (config, server composition, routing,
 * metrics, HTTP). The `sipd` command is `dist/cli.js`.
 */
export { Sipd, ALLOW } from './server.js'
export type { SipdStatus, RouteDecision, RouteContext, RoutingModule } from './server.js'
export { loadConfig, buildConfig, ConfigError } from './config.js'
export type { SipdConfig, MediaSetConfig, MediaNodeConfig, MediaAlgorithm } from './config.js'
export { SipdMetrics } from './metrics.js'
export { checkRequest, SUPPORTED_EXTENSIONS } from './sanity.js'
export { createLogger } from './logger.js'
