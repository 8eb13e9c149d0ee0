// ioredis and pg load on first use: a node on the embedded defaults (memory
// locations, config-file subscribers and media sets) never needs them, and
// importing them cost it about 28 MiB of resident memory. Checked in a child
// process, since this test process may have loaded them already.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const cwd = fileURLToPath(new URL('..', import.meta.url))

/** Which of ioredis and pg are loaded after running `code` (an ES module body). */
function loadedAfter (code: string): { ioredis: boolean, pg: boolean } {
  const script = [
    "import { createRequire } from 'node:module'",
    code,
    'const files = Object.keys(createRequire(import.meta.url).cache)',
    "console.log(JSON.stringify({ ioredis: files.some(f => f.includes('/node_modules/ioredis/')), pg: files.some(f => f.includes('/node_modules/pg/')) }))"
  ].join('\n')
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8', timeout: 30000 })
  if (r.status !== 0) throw new Error(`child failed (${String(r.status)}): ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as { ioredis: boolean, pg: boolean }
}

t.test('importing sipd and its packages loads neither ioredis nor pg', async t => {
  t.same(loadedAfter("await import('@sipd/proxy'); await import('@sipd/registrar'); await import('@sipd/media-bridge')"), { ioredis: false, pg: false })
})

t.test('a Redis location store loads ioredis, a PostgreSQL store pg', async t => {
  t.same(loadedAfter([
    "const { RedisLocationStore } = await import('@sipd/registrar')",
    // Port 1: nothing listens; the store is closed before any command.
    "const s = new RedisLocationStore({ redis: 'redis://127.0.0.1:1' })",
    'await s.close()'
  ].join('\n')), { ioredis: true, pg: false })
  t.same(loadedAfter([
    "const { PgSubscriberStore } = await import('@sipd/registrar')",
    "const s = new PgSubscriberStore({ connectionString: 'postgres://127.0.0.1:1/none' })",
    'await s.close()'
  ].join('\n')), { ioredis: false, pg: true })
  t.same(loadedAfter([
    "const { PgMediaSetStore } = await import('@sipd/media-bridge')",
    "const s = new PgMediaSetStore({ connectionString: 'postgres://127.0.0.1:1/none' })",
    'await s.close()'
  ].join('\n')), { ioredis: false, pg: true })
})
