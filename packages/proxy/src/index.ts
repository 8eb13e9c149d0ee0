/**
 * @sipd/proxy: the sipd application (config, server composition, routing,
 * metrics, HTTP). The `sipd` command is `dist/cli.js`.
 */
export { Sipd } from './server.js'
export type { SipdStatus, RouteDecision, RouteContext, RouteTarget, RoutingModule } from './server.js'
export { loadConfig, buildConfig, ConfigError } from './config.js'
export type { SipdConfig, MediaSetConfig, MediaNodeConfig, MediaAlgorithm } from './config.js'
export { SipdMetrics } from './metrics.js'
export { ALLOW, checkRequest, SUPPORTED_EXTENSIONS } from './sanity.js'
export { createLogger } from './logger.js'
export { ProxyCore, DEFAULT_PROXY_CORE_OPTIONS, ProxyError, loopHash } from './proxy-core.js'
export type { ProxyCoreOptions, ForwardTarget, ForwardOptions, BranchOutcome, Preprocessed, Refusal } from './proxy-core.js'
export { DefaultRouting, registrarLocate, isFailoverStatus } from './routing-default.js'
export type { DefaultRoutingOptions, Locate, LocatedContact } from './routing-default.js'
export { AddressList, AclError } from './acl.js'
export { TrunkRouter, TrunkConfigError, gatewayRequestUri, DEFAULT_TRUNK_ROUTER_OPTIONS } from './trunks.js'
export type { Gateway, TrunkRoute, TrunkRouterOptions } from './trunks.js'
export { ProxyAuth } from './proxy-auth.js'
export type { ProxyAuthOptions, ProxyAuthOutcome } from './proxy-auth.js'
