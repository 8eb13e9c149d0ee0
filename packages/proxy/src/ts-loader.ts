/**
 * Module hooks (node:module `register`) that let `routing:` name a
 * TypeScript file: `.ts`/`.mts` files are transpiled with the TypeScript
 * compiler (types erased, no type check: `tsc --noEmit` is the place for
 * that), and a relative `./x.js` import from such a file finds `./x.ts`,
 * as TypeScript's NodeNext resolution writes it.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

interface LoadContext { format?: string | null }
interface LoadResult { format: string, source?: string | Buffer, shortCircuit?: boolean }
interface ResolveContext { parentURL?: string }
interface ResolveResult { url: string, format?: string | null, shortCircuit?: boolean }

function isTypeScript (url: string): boolean {
  return url.startsWith('file:') && (url.endsWith('.ts') || url.endsWith('.mts')) && !url.endsWith('.d.ts')
}

export async function resolve (specifier: string, context: ResolveContext, nextResolve: (s: string, c: ResolveContext) => Promise<ResolveResult>): Promise<ResolveResult> {
  try {
    return await nextResolve(specifier, context)
  } catch (err) {
    const parent = context.parentURL
    if (parent !== undefined && isTypeScript(parent) && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return await nextResolve(specifier.slice(0, -3) + '.ts', context)
    }
    throw err
  }
}

export async function load (url: string, context: LoadContext, nextLoad: (u: string, c: LoadContext) => Promise<LoadResult>): Promise<LoadResult> {
  if (!isTypeScript(url)) return await nextLoad(url, context)
  let ts: typeof import('typescript')
  try {
    ts = (await import('typescript')).default
  } catch {
    throw new Error(`routing module ${url}: loading TypeScript needs the typescript package (npm install typescript), or compile it to .js/.mjs`)
  }
  const fileName = fileURLToPath(url)
  const out = ts.transpileModule(await readFile(fileName, 'utf8'), {
    fileName,
    reportDiagnostics: false,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, inlineSourceMap: true, inlineSources: true }
  })
  return { format: 'module', source: out.outputText, shortCircuit: true }
}
