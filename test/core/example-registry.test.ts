/** Port of tests/test_example_registry.py: the shipped example loads, has what the README promises, survives writes. */
import { describe, expect, test } from 'bun:test'
import { cpSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { capabilitiesOf, internalModelId, isDeprecated, rolesOf } from '../../src/core/entry.ts'
import { scanJson } from '../../src/core/json-text.ts'
import { parseRegistry } from '../../src/core/registry.ts'
import { lockModel, selectModel, unlockModel, verifyModel } from '../../src/core/service.ts'
import { EXAMPLE_REGISTRY, ROOT } from '../helpers/paths.ts'
import { depsFor, tempDir } from '../helpers/registry.ts'

type Raw = Record<string, unknown>

const KNOWN = new Set([
	'name', 'display_name', 'backend', 'backend_config', 'served_model_id', 'model_aliases', 'capabilities', 'roles',
	'role_priority', 'deprecated', 'artifacts', 'version_lock', 'probes', 'performance', 'generation_defaults', 'metadata'
])

/** The raw text of each entry of a registry file. */
function entryTexts(text: string): string[] {
	const scanned = scanJson(text)
	if (!scanned.ok || !scanned.elements) throw new Error('not a JSON array')
	return scanned.elements.map((e) => text.slice(e.start, e.end))
}

describe('configs/model_registry.json', () => {
	test('has the promised entries', () => {
		const text = readFileSync(EXAMPLE_REGISTRY, 'utf8')
		const entries = parseRegistry(text, EXAMPLE_REGISTRY).entries
		const backends = new Set(entries.map((e) => e.backend))
		expect(backends).toContain('vllm')
		expect(backends).toContain('ollama')
		expect(entries.some((e) => e.backend === 'vllm' && capabilitiesOf(e).vision)).toBe(true)
		expect(entries.some((e) => e.backend === 'ollama' && internalModelId(e).includes(':'))).toBe(true)
		expect(
			entries.some((e) => !capabilitiesOf(e).vision && Object.keys(e.role_priority ?? {}).length > 0 && rolesOf(e).length > 0)
		).toBe(true)
		expect(entries.some(isDeprecated)).toBe(true)
		const raw = JSON.parse(text) as Raw[]
		expect(raw.some((e) => Object.keys(e).some((k) => !KNOWN.has(k)))).toBe(true)
	})

	test('unknown fields survive every kind of write; untouched entries stay byte-identical', async () => {
		using dir = tempDir()
		const configs = join(dir.path, 'configs')
		cpSync(join(ROOT, 'configs', 'example-models'), join(configs, 'example-models'), { recursive: true })
		cpSync(EXAMPLE_REGISTRY, join(configs, 'model_registry.json'))
		const path = join(configs, 'model_registry.json')
		const beforeText = readFileSync(path, 'utf8')
		const before = JSON.parse(beforeText) as Raw[]
		const deps = depsFor(path)
		try {
			await verifyModel(deps, 'tiny') // the alias of tiny-captioner
			await lockModel(deps, 'tiny-captioner', { setExpected: true })
			await unlockModel(deps, 'tiny')
			await lockModel(deps, 'tiny', { setExpected: true, replace: true })
			expect(selectModel(deps, { name: 'tiny' }).locked).toBe(true)
		} finally {
			deps.state.close()
		}
		const afterText = readFileSync(path, 'utf8')
		const after = JSON.parse(afterText) as Raw[]
		expect(after.map((e) => e['name'])).toEqual(before.map((e) => e['name']))
		const beforeTexts = entryTexts(beforeText)
		const afterTexts = entryTexts(afterText)
		before.forEach((old, i) => {
			const now = after[i] as Raw
			if (old['name'] !== 'tiny-captioner') {
				expect(now).toEqual(old) // untouched entries: identical, key order and bytes included
				expect(Object.keys(now)).toEqual(Object.keys(old))
				expect(afterTexts[i]).toBe(beforeTexts[i] as string)
			} else {
				const keys = new Set([...Object.keys(old), ...Object.keys(now)])
				const changed = [...keys].filter((k) => JSON.stringify(old[k]) !== JSON.stringify(now[k])).sort()
				expect(changed).toEqual(['artifacts', 'version_lock'])
				expect(Object.keys(now).slice(0, Object.keys(old).length)).toEqual(Object.keys(old))
				expect(now['version_lock']).toEqual({
					locked: true,
					expected_aggregate_sha256: (now['artifacts'] as Raw)['aggregate_sha256'],
					last_verified: expect.any(String)
				})
			}
		})
	})
})
