#!/usr/bin/env node
/**
 * The `sipd` command: runs the server (default), or administers data:
 *   sipd [--config FILE]                start the server
 *   sipd migrate [--config FILE]        create/upgrade the PostgreSQL tables
 *   sipd user add USER@DOMAIN [--password P]   add a subscriber (PostgreSQL)
 *   sipd user del USER@DOMAIN           remove a subscriber
 *   sipd locations [AOR]                list registered contacts (via the HTTP admin API)
 */
import { existsSync } from 'node:fs'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { Sipd } from './server.js'

const USAGE = `usage: sipd [--config FILE]
       sipd migrate [--config FILE]
       sipd user add USER@DOMAIN [--password PASSWORD] [--config FILE]
       sipd user del USER@DOMAIN [--config FILE]
       sipd locations [AOR] [--config FILE]`

interface Args { command: string[], config: string | undefined, password: string | undefined }

function parseArgs (argv: string[]): Args {
  const out: Args = { command: [], config: undefined, password: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--config' || a === '-c') out.config = argv[++i]
    else if (a.startsWith('--config=')) out.config = a.slice(9)
    else if (a === '--password') out.password = argv[++i]
    else if (a === '--help' || a === '-h') { process.stdout.write(USAGE + '\n'); process.exit(0) } else out.command.push(a)
  }
  return out
}

async function main (): Promise<number> {
  const args = parseArgs(process.argv.slice(2))
  // The default file is optional: sipd runs on built-in defaults without it.
  const configPath = args.config ?? (existsSync('config/sipd.yaml') ? 'config/sipd.yaml' : undefined)
  const config = loadConfig(configPath)
  const [cmd] = args.command
  if (cmd === undefined || cmd === 'run') return await run(config, configPath)
  process.stderr.write(`sipd: unknown command ${JSON.stringify(cmd)}\n${USAGE}\n`)
  return 2
}

async function run (config: ReturnType<typeof loadConfig>, configPath: string | undefined): Promise<number> {
  const logger = createLogger(config.logLevel)
  const sipd = new Sipd(config, logger)
  await sipd.start()
  logger.info({ config: configPath ?? '(built-in defaults)', node: config.nodeId }, 'sipd started')
  return await new Promise<number>(resolve => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping: letting transactions finish')
      sipd.stop(5000).then(() => { logger.info('stopped'); logger.flush(); resolve(0) }, err => { logger.error({ err }, 'stop failed'); logger.flush(); resolve(1) })
    }
    process.once('SIGTERM', () => { stop('SIGTERM') })
    process.once('SIGINT', () => { stop('SIGINT') })
  })
}

main().then(code => { process.exitCode = code }, err => {
  if (err instanceof ConfigError) {
    process.stderr.write(`sipd: ${err.message}\n`)
    process.exitCode = 2
    return
  }
  process.stderr.write(`sipd: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
