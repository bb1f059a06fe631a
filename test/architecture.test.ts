/**
 * The layering holds: the core imports nothing from the adapters, Elysia or cac, and never reads the
 * environment; the adapters hold no product logic of their own (they import the core's use cases).
 */
import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { ROOT } from './helpers/paths.ts'

function sources(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []
	)
}

function imports(file: string): string[] {
	const text = readFileSync(file, 'utf8')
	return [...text.matchAll(/(?:from|import\()\s*'([^']+)'/g)].map((m) => m[1] as string)
}

describe('architecture', () => {
	const core = sources(join(ROOT, 'src', 'core'))

	test('the core exists and has one file per concept', () => {
		const names = core.map((f) => relative(join(ROOT, 'src', 'core'), f)).sort()
		expect(names).toEqual(
			expect.arrayContaining(['errors.ts', 'schema.ts', 'capabilities.ts', 'registry.ts', 'store.ts', 'state.ts', 'integrity.ts', 'select.ts', 'service.ts'])
		)
	})

	test('core imports nothing from http/, cli/, elysia or cac', () => {
		const offenders = core.flatMap((file) =>
			imports(file)
				.filter((spec) => /(^|\/)(http|cli)\//.test(spec) || spec === 'elysia' || spec.startsWith('@elysiajs/') || spec === 'cac')
				.map((spec) => `${relative(ROOT, file)} imports ${spec}`)
		)
		expect(offenders).toEqual([])
	})

	test('core never reads process.env (settings come in from the adapters)', () => {
		const code = (file: string) =>
			readFileSync(file, 'utf8')
				.split('\n')
				.filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
				.join('\n')
		const offenders = core.filter((file) => /process\.env/.test(code(file))).map((f) => relative(ROOT, f))
		expect(offenders).toEqual([])
	})

	test('http/ and cli/ do not import each other (except serve starting the app)', () => {
		const http = sources(join(ROOT, 'src', 'http')).flatMap((f) => imports(f).filter((s) => s.includes('/cli/')).map((s) => `${relative(ROOT, f)} -> ${s}`))
		const cli = sources(join(ROOT, 'src', 'cli'))
			.filter((f) => !f.endsWith(join('commands', 'serve.ts')))
			.flatMap((f) => imports(f).filter((s) => s.includes('/http/')).map((s) => `${relative(ROOT, f)} -> ${s}`))
		expect([...http, ...cli]).toEqual([])
	})
})

describe('the error tree', () => {
	test('every error class is a LoaderError with its own code and a doc comment saying when it is raised', async () => {
		const errors = await import('../src/core/errors.ts')
		const source = readFileSync(join(ROOT, 'src', 'core', 'errors.ts'), 'utf8')
		const classes = (Object.entries(errors) as [string, unknown][]).filter(
			(entry): entry is [string, abstract new (...args: never[]) => Error] =>
				typeof entry[1] === 'function' && (entry[1] as { prototype?: unknown }).prototype instanceof Error
		)
		expect(classes.length).toBeGreaterThan(20)
		const problems: string[] = []
		const codes = new Map<string, string>()
		for (const [name, cls] of classes) {
			if (!(cls.prototype instanceof errors.LoaderError) && cls !== errors.LoaderError) problems.push(`${name} is not a LoaderError`)
			if (!new RegExp(`\\*/\\nexport class ${name}\\b`).test(source)) problems.push(`${name} has no doc comment`)
			if (!source.includes(`override name = '${name}'`) && name !== 'LoaderError') problems.push(`${name} does not set its name`)
			const start = source.indexOf(`export class ${name} `)
			const body = source.slice(start, source.indexOf('export class', start + 1) >>> 0 || undefined)
			const code = /readonly code(?:: string)? = '([a-z_]+)'/.exec(body)?.[1]
			if (!code) problems.push(`${name} has no code`)
			else if (codes.has(code)) problems.push(`${name} reuses the code ${code} of ${codes.get(code)}`)
			if (code) codes.set(code, name)
		}
		expect(problems).toEqual([])
	})

	test('the doc comment at the top of errors.ts draws every class', () => {
		const source = readFileSync(join(ROOT, 'src', 'core', 'errors.ts'), 'utf8')
		const tree = source.slice(0, source.indexOf('*/'))
		const declared = [...source.matchAll(/^export class (\w+)/gm)].map((m) => m[1] as string)
		expect(declared.filter((name) => !tree.includes(name))).toEqual([])
	})
})
