#!/usr/bin/env node
// The `sipd` command. npm links a package's bins when it installs it, which in
// this repository is before anything is built; a bin pointing into dist/ is
// then skipped and never linked. This file exists from the start and runs the
// built CLI, or says how to build it.
try {
  await import('../dist/cli.js')
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/cli.js')) throw err
  process.stderr.write('sipd: not built yet: run `npm run build` (or `npm start`) in the repository first\n')
  process.exitCode = 1
}
