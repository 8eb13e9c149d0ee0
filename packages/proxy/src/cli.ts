#!/usr/bin/env node
/**
 * The `sipd` command: runs the server (default), or administers data:
 *   sipd [--config FILE]                start the server
 *   sipd migrate [--config FILE]        create/upgrade the PostgreSQL tables (subscribers, media sets)
 *   sipd user add USER@DOMAIN [--password P]   add a subscriber (PostgreSQL)
 *   sipd user del USER@DOMAIN           remove a subscriber
 *   sipd locations [AOR]                list registered contacts (via the HTTP admin API)
 */
import { existsSync } from 'node:fs'
import { ConfigError, loadConfig } from './config.js'
import { createLogger } from './logger.js'
import { Sipd } from './server.js'
import { PgSubscriberStore, runMigrations, SubscriberExistsError } from '@sipd/registrar'
import { MEDIA_MIGRATIONS, PgMediaSetStore } from '@sipd/media-bridge'

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
  if (cmd === 'migrate') return await withPg(config, async pg => { const done = [...await pg.migrate(), ...await migrateMedia(config.database.url!)]; process.stdout.write(done.length === 0 ? 'migrations: up to date\n' : done.map(m => `applied ${m}\n`).join('')); return 0 })
  if (cmd === 'user') return await user(config, args)
  if (cmd === 'locations') return await locations(config, args.command[1])
  process.stderr.write(`sipd: unknown command ${JSON.stringify(cmd)}\n${USAGE}\n`)
  return 2
}

async function run (config: ReturnType<typeof loadConfig>, configPath: string | undefined): Promise<number> {
  const logger = createLogger(config.logLevel)
  const sipd = new Sipd(config, logger)
  // SIGHUP re-reads the media sets (file or PostgreSQL); calls in progress go on.
  process.on('SIGHUP', () => { sipd.media?.reload('SIGHUP').catch(() => {}) })
  try {
    await sipd.start()
  } catch (err) {
    // Never run half-started (SIP bound, HTTP not): release what was bound and exit non-zero.
    await sipd.stop(0).catch(() => {})
    logger.flush()
    throw err
  }
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

async function withPg (config: ReturnType<typeof loadConfig>, fn: (pg: PgSubscriberStore) => Promise<number>): Promise<number> {
  if (config.database.url === undefined) {
    process.stderr.write('sipd: no PostgreSQL configured: set database.url in the config or SIPD_DATABASE_URL\n')
    return 2
  }
  const pg = new PgSubscriberStore({ connectionString: config.database.url })
  try {
    return await fn(pg)
  } finally {
    await pg.close()
  }
}

/** The media tables (`media_sets`, `media_nodes`), recorded as component `media`. */
async function migrateMedia (url: string): Promise<string[]> {
  const store = new PgMediaSetStore({ connectionString: url })
  try {
    return (await runMigrations(store.pool, 'media', MEDIA_MIGRATIONS)).map(m => `media ${m}`)
  } finally {
    await store.close()
  }
}

/** `sipd user add USER@DOMAIN --password P` / `sipd user del USER@DOMAIN`. */
async function user (config: ReturnType<typeof loadConfig>, args: Args): Promise<number> {
  const [, sub, who] = args.command
  const at = who?.lastIndexOf('@') ?? -1
  if ((sub !== 'add' && sub !== 'del') || who === undefined || at <= 0 || at === who.length - 1) {
    process.stderr.write(`sipd: expected "user add USER@DOMAIN --password P" or "user del USER@DOMAIN"\n${USAGE}\n`)
    return 2
  }
  const name = who.slice(0, at)
  const domain = who.slice(at + 1).toLowerCase()
  if (sub === 'add') {
    const password = args.password ?? process.env.SIPD_USER_PASSWORD
    if (password === undefined || password === '') {
      process.stderr.write('sipd: user add needs --password PASSWORD (or SIPD_USER_PASSWORD)\n')
      return 2
    }
    return await withPg(config, async pg => {
      try {
        await pg.addUser(name, domain, password)
      } catch (err) {
        if (err instanceof SubscriberExistsError) {
          process.stderr.write(`sipd: ${err.message}\n`)
          return 1
        }
        throw err
      }
      process.stdout.write(`added ${name}@${domain}\n`)
      return 0
    })
  }
  return await withPg(config, async pg => {
    const removed = await pg.deleteUser(name, domain)
    process.stdout.write(removed ? `deleted ${name}@${domain}\n` : `no subscriber ${name}@${domain}\n`)
    return removed ? 0 : 1
  })
}

/** `sipd locations [AOR]`: asks the admin API of the sipd running at the config's http address. */
async function locations (config: ReturnType<typeof loadConfig>, aor: string | undefined): Promise<number> {
  const base = `http://${config.http}/api/locations`
  const print = (v: unknown): void => { process.stdout.write(JSON.stringify(v, null, 2) + '\n') }
  try {
    if (aor !== undefined) {
      const res = await fetch(`${base}?aor=${encodeURIComponent(aor)}`)
      print(await res.json())
      return res.ok ? 0 : 1
    }
    let cursor: string | undefined
    // Bounded: at most 10,000 pages of 1,000.
    for (let page = 0; page < 10_000; page++) {
      const res = await fetch(`${base}?limit=1000${cursor !== undefined ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
      const body = await res.json() as { items?: unknown[], cursor?: string }
      if (!res.ok) { print(body); return 1 }
      for (const item of body.items ?? []) print(item)
      cursor = body.cursor
      if (cursor === undefined) break
    }
    return 0
  } catch (err) {
    process.stderr.write(`sipd: cannot reach the admin API at ${base}: ${(err as Error).message}\n`)
    return 1
  }
}
