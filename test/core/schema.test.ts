/** Port of tests/test_schema.py: naming rules, entry validation, what nulls and "None" mean. */
import { describe, expect, test } from 'bun:test'
import { capabilitiesOf, internalModelId, isDeprecated, isLocked, recordedFiles, rolesOf, visionOk } from '../../src/core/entry.ts'
import { nameProblem } from '../../src/core/names.ts'
import { entryProblems, parseRegistry } from '../../src/core/registry.ts'
import { type RegistryEntry, registryEntryChecker } from '../../src/core/schema.ts'
import { checkRegistryEntry } from '../../src/core/generated/entry-check.js'
import { endpointOf } from '../../src/core/select.ts'

/** One entry, validated the way the registry validates it (throws on any problem). */
function validated(raw: Record<string, unknown>): RegistryEntry {
	expect(entryProblems(raw, 0)).toEqual([])
	return raw as RegistryEntry
}

describe('nameProblem()', () => {
	test.each(['qwen2.5vl_7b_(Q4_K_M)', 'llama3.1-local:latest', 'a', 'x'.repeat(128), 'model+lora@v2', 'A-b_c.d:e(f)'])(
		'accepts %p',
		(name) => {
			expect(nameProblem(name)).toBeUndefined()
		}
	)

	test.each([
		['', 'must not be empty'],
		['.hidden', 'must not start with "."'],
		['../etc/passwd', 'must not start with "."'],
		['a/b', 'contains "/"'],
		['a\\b', 'contains "\\\\"'],
		['x'.repeat(129), 'is 129 characters long, the limit is 128'],
		['tab\there', 'contains control characters'],
		['sp ace', 'contains " "'],
		['semi;colon', 'contains ";"'],
		[null, 'must be a string']
	] as const)('rejects %p and says why', (name, why) => {
		expect(nameProblem(name)).toBe(why)
	})

	test('aliases may be Hugging Face repo ids, but never paths', () => {
		expect(nameProblem('Qwen/Qwen2.5-VL-7B-Instruct-AWQ', { alias: true })).toBeUndefined()
		expect(nameProblem('../x', { alias: true })).toBe('must not start with "."')
		expect(nameProblem('a/../b', { alias: true })).toBe('has a path separator in the wrong place')
		expect(nameProblem('/etc/passwd', { alias: true })).toBe('has a path separator in the wrong place')
		expect(nameProblem('a/b/c', { alias: true })).toBe('has a path separator in the wrong place')
		// a repo id is an alias, not a name
		expect(nameProblem('Qwen/Qwen2.5-VL-7B-Instruct-AWQ')).toBe('contains "/"')
	})
})

describe('internalModelId()', () => {
	test('the string "None" (Python\'s None, as imageworks wrote it) means unset: the name is used', () => {
		expect(internalModelId(validated({ name: 'm', backend: 'vllm', served_model_id: 'None' }))).toBe('m')
		expect(internalModelId(validated({ name: 'm', backend: 'vllm', served_model_id: null }))).toBe('m')
		expect(internalModelId(validated({ name: 'm', backend: 'vllm', served_model_id: '  ' }))).toBe('m')
		expect(internalModelId(validated({ name: 'm', backend: 'ollama', served_model_id: 'qwen2.5vl:7b' }))).toBe('qwen2.5vl:7b')
	})
})

describe('RegistryEntry validation', () => {
	test('rejects wrong types strictly, naming the entry and the field inside its block', () => {
		expect(entryProblems({ name: 'm', backend: 'vllm', backend_config: { port: '8000' } }, 0)).toEqual([
			'entry 0 ("m"): field backend_config.port: must be an integer from 1 to 65535 or null, found "8000"'
		])
		expect(entryProblems({ name: 'm', backend: 'vllm', version_lock: { locked: 'yes' } }, 0)).toEqual([
			'entry 0 ("m"): field version_lock.locked: must be true or false or null, found "yes"'
		])
		expect(entryProblems({ name: 'm', backend: 'vllm', artifacts: { aggregate_sha256: 'abc' } }, 0)).toEqual([
			'entry 0 ("m"): field artifacts.aggregate_sha256: must be 64 lowercase hex digits (a sha256), or empty'
		])
		for (const bad of [{ backend_config: { port: '8000' } }, { version_lock: { locked: 'yes' } }, { artifacts: { aggregate_sha256: 'abc' } }]) {
			expect(registryEntryChecker().Check({ name: 'm', backend: 'vllm', ...bad })).toBe(false)
			expect(checkRegistryEntry({ name: 'm', backend: 'vllm', ...bad })).toBe(false)
		}
	})

	test('names the field for values nested in arrays and records, and the required fields', () => {
		expect(entryProblems({ name: 'm', backend: 'vllm', model_aliases: ['ok', 'a b'] }, 2)).toEqual([
			'entry 2 ("m"): field model_aliases.1: alias contains " "'
		])
		expect(entryProblems({ name: 'm', backend: 'vllm', capabilities: { vision: 'yes' } }, 2)).toEqual([
			'entry 2 ("m"): field capabilities.vision: must be true or false or null, found "yes"'
		])
		expect(entryProblems({ name: 'm', backend: 'vllm', role_priority: { r: 1.5 } }, 2)).toEqual([
			'entry 2 ("m"): field role_priority.r: must be an integer, found 1.5'
		])
		expect(entryProblems({ name: 'm', backend: 'vllm', artifacts: { files: [{ path: 'x', sha256: 'zz' }] } }, 2)).toEqual([
			'entry 2 ("m"): field artifacts.files.0.sha256: must be 64 lowercase hex digits (a sha256), or empty'
		])
		expect(entryProblems({ name: 'm', backend: '' }, 2)).toEqual([
			'entry 2 ("m"): field backend: must be a string of 1 to 64 characters, found ""'
		])
		expect(entryProblems({ backend: 'vllm' }, 3)).toEqual(['entry 3: field name: is missing (required)'])
		expect(entryProblems({ name: 'm' }, 3)).toEqual(['entry 3 ("m"): field backend: is missing (required)'])
		expect(entryProblems([], 4)).toEqual(['entry 4: must be a JSON object, found an array'])
	})

	test('nulls for blocks mean their defaults', () => {
		const e = validated({
			name: 'm',
			backend: 'vllm',
			roles: null,
			probes: null,
			capabilities: null,
			artifacts: null,
			backend_config: null,
			model_aliases: null,
			version_lock: null,
			deprecated: null
		})
		expect(rolesOf(e)).toEqual([])
		expect(visionOk(e)).toBeNull()
		expect(recordedFiles(e)).toEqual(new Map())
		expect(isLocked(e)).toBe(false)
		expect(isDeprecated(e)).toBe(false)
		expect(endpointOf(e)).toBe('http://localhost:8000/v1')
		expect(capabilitiesOf(e)).toEqual({ text: true, vision: false, audio: false, embedding: false, tools: false, thinking: false })
		// null aliases: the entry is still found by name, and nothing else resolves to it
		const registry = parseRegistry(JSON.stringify([e]), 'r.json')
		expect(registry.get('m')).toBe(registry.entries[0] as RegistryEntry)
		expect(registry.suggest('m')).toEqual(['m'])
	})
})
