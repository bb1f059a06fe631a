/**
 * @module
 * The naming rules for model names and aliases. A name or alias is never used to build a filesystem
 * path (or a URL segment) without passing {@link nameProblem}.
 */

const NAME_BODY = '[A-Za-z0-9_\\-:()+@][A-Za-z0-9._\\-:()+@]{0,127}'

/** 1-128 characters of letters, digits and `. _ - : ( ) + @`, not starting with `.`. */
export const NAME_PATTERN = `^${NAME_BODY}$`
/** Aliases may also be Hugging Face repo ids (`org/name`): at most one `/`, each side a valid name. */
export const ALIAS_PATTERN = `^${NAME_BODY}(?:/${NAME_BODY})?$`

const NAME_RE = new RegExp(NAME_PATTERN)
const ALIAS_RE = new RegExp(ALIAS_PATTERN)
const ALLOWED_CHAR = /[A-Za-z0-9._\-:()+@]/

/** Why `value` breaks the naming rules, or undefined when it is fine. */
export function nameProblem(value: unknown, options: { alias?: boolean } = {}): string | undefined {
	const re = options.alias ? ALIAS_RE : NAME_RE
	// An alias may be `org/name`: each side up to 128 characters (the pattern checks the sides).
	const limit = options.alias ? 257 : 128
	if (typeof value === 'string' && value.length <= limit && re.test(value)) return undefined
	if (typeof value !== 'string') return 'must be a string'
	if (!value) return 'must not be empty'
	const parts = options.alias ? value.split('/') : [value]
	if (parts.length === 1 && value.length > 128) return `is ${value.length} characters long, the limit is 128`
	if (value.length > limit) return `is ${value.length} characters long, the limit is ${limit}`
	if (parts.some((part) => part.length > 128)) return 'has a part longer than 128 characters (org/name: 128 each)'
	if (value.startsWith('.')) return 'must not start with "."'
	// eslint-disable-next-line no-control-regex
	if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains control characters'
	const bad = [...new Set([...value].filter((c) => !ALLOWED_CHAR.test(c) && !(options.alias && c === '/')))].sort()
	if (bad.length) return `contains ${bad.map((c) => JSON.stringify(c)).join(' ')}`
	return value.includes('/') ? 'has a path separator in the wrong place' : 'is not a valid name'
}
