/** Port of tests/test_selection.py: endpoints, selection by name or alias, selection by role. */
import { describe, expect, test } from 'bun:test'
import { parseRequired } from '../../src/core/capabilities.ts'
import { MissingCapabilities, ModelNotFound, NoModelForRole } from '../../src/core/errors.ts'
import { type Registry, parseRegistry } from '../../src/core/registry.ts'
import type { RegistryEntry } from '../../src/core/schema.ts'
import { endpointOf, roleOrder, selectByName, selectByRole, selectionOf } from '../../src/core/select.ts'
import { caught } from '../helpers/errors.ts'
import { entry } from '../helpers/registry.ts'

/** A validated registry of these entries, in this order. */
const reg = (...entries: Record<string, unknown>[]): Registry => parseRegistry(JSON.stringify(entries), 'r.json')

describe('endpointOf()', () => {
	test.each([
		['ollama', {}, 'http://localhost:11434/v1'],
		['vllm', {}, 'http://localhost:8000/v1'],
		['lmdeploy', {}, 'http://localhost:23333/v1'],
		['llamacpp', {}, 'http://localhost:8080/v1'],
		['llama.cpp', {}, 'http://localhost:8080/v1'],
		['something-else', {}, 'http://localhost:8000/v1'],
		['vllm', { port: 24001 }, 'http://localhost:24001/v1'],
		['ollama', { host: 'imageworks-ollama' }, 'http://imageworks-ollama:11434/v1'],
		['ollama', { host: 'https://gpu.example:443/v1/' }, 'https://gpu.example:443/v1'],
		['vllm', { host: 'x', port: 1, base_url: 'http://proxy:9000/v1' }, 'http://proxy:9000/v1']
	] as const)('%s with %j -> %s', (backend, cfg, url) => {
		const registry = reg({ name: 'm', backend, backend_config: cfg })
		expect(endpointOf(registry.get('m'))).toBe(url)
	})
})

describe('selectByName()', () => {
	test('selects by alias and answers with the entry, its internal id and its capabilities', () => {
		const r = reg(entry('qwen', { aliases: ['Qwen/Qwen2.5-VL'], servedModelId: 'Qwen/Qwen2.5-VL', capabilities: { vl: true } }))
		const selected = selectByName(r, 'Qwen/Qwen2.5-VL', parseRequired(['vision']))
		expect(selectionOf(selected)).toEqual({
			name: 'qwen',
			endpoint: 'http://localhost:8000/v1',
			backend: 'vllm',
			internal_model_id: 'Qwen/Qwen2.5-VL',
			capabilities: { text: true, vision: true, audio: false, embedding: false, tools: false, thinking: false },
			locked: false,
			deprecated: false,
			display_name: null
		})
	})

	test('names every missing capability', () => {
		const r = reg(entry('t'))
		const err = caught(MissingCapabilities, () => selectByName(r, 't', parseRequired(['vision', 'tools', 'embedding'])))
		expect(err.missing).toEqual(['vision', 'embedding', 'tools'])
		expect(err.message).toBe(
			'Model "t" lacks required capabilities: vision, embedding, tools. Choose another model or select by role'
		)
	})

	test('an unknown name is ModelNotFound, with what to do', () => {
		const err = caught(ModelNotFound, () => selectByName(reg(entry('a')), 'b'))
		expect(err.message).toBe('No model named "b" in the registry. Run "imageworks-loader list" to see them')
		expect(err.suggestions).toEqual([])
	})
})

const ROLE_TABLE = [
	entry('zeta', { roles: ['r'], rolePriority: { r: 5 } }),
	entry('alpha', { roles: ['r'], rolePriority: { r: 5 } }),
	entry('best-but-deprecated', { roles: ['r'], rolePriority: { r: 0 }, deprecated: true }),
	entry('no-prio-b', { roles: ['r'] }),
	entry('no-prio-a', { roles: ['r'] }),
	entry('vision-late', { roles: ['r'], rolePriority: { r: 9 }, capabilities: { vision: true } }),
	entry('not-in-role', { rolePriority: { r: -1 } })
]

const names = (entries: readonly RegistryEntry[]) => entries.map((e) => e.name)

describe('selectByRole()', () => {
	test('prefers the lowest role_priority, then the name; deprecated entries are skipped', () => {
		expect(selectByRole(reg(...ROLE_TABLE), 'r').name).toBe('alpha')
		expect(names(roleOrder(reg(...ROLE_TABLE), 'r'))).toEqual([
			'best-but-deprecated',
			'alpha',
			'zeta',
			'vision-late',
			'no-prio-a',
			'no-prio-b'
		])
	})

	test('the answer does not depend on the order of the file', () => {
		const answers = new Set<string>()
		for (let i = 0; i < ROLE_TABLE.length; i++) {
			answers.add(selectByRole(reg(...ROLE_TABLE.slice(i), ...ROLE_TABLE.slice(0, i)), 'r').name)
		}
		expect([...answers]).toEqual(['alpha'])
	})

	test('entries without a priority come after, in name order', () => {
		const r = reg(entry('no-prio-b', { roles: ['r'] }), entry('no-prio-a', { roles: ['r'] }))
		expect(selectByRole(r, 'r').name).toBe('no-prio-a')
	})

	test('ties go to the name in byte order, not locale order', () => {
		// "B" (0x42) sorts before "a" (0x61) in bytes; a locale collation would put "a" first.
		const r = reg(entry('a-model', { roles: ['r'], rolePriority: { r: 1 } }), entry('B-model', { roles: ['r'], rolePriority: { r: 1 } }))
		expect(selectByRole(r, 'r').name).toBe('B-model')
	})

	test('with required capabilities, skips candidates that lack them', () => {
		expect(selectByRole(reg(...ROLE_TABLE), 'r', parseRequired(['vision'])).name).toBe('vision-late')
	})

	test('without a candidate, explains each rejection', () => {
		const err = caught(NoModelForRole, () => selectByRole(reg(...ROLE_TABLE), 'r', parseRequired(['audio'])))
		expect(err.rejected).toEqual([
			{ name: 'best-but-deprecated', reason: 'deprecated' },
			{ name: 'alpha', reason: 'lacks audio' },
			{ name: 'zeta', reason: 'lacks audio' },
			{ name: 'vision-late', reason: 'lacks audio' },
			{ name: 'no-prio-a', reason: 'lacks audio' },
			{ name: 'no-prio-b', reason: 'lacks audio' }
		])
		expect(err.message).toStartWith('No model can serve role "r". Candidates rejected:\n  - best-but-deprecated: deprecated\n')
		expect(err.message).toEndWith("\nAdd the role to an entry's roles or relax the required capabilities")

		const none = caught(NoModelForRole, () => selectByRole(reg(...ROLE_TABLE), 'nobody'))
		expect(none.rejected).toEqual([])
		expect(none.message).toBe(
			'No model can serve role "nobody". No entry lists this role.\n' +
				"Add the role to an entry's roles or relax the required capabilities"
		)
	})
})
