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
