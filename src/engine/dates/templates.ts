/**
 * Date templates: fail2ban's `datepattern` syntax turned into Python-`re` regex texts (SPEC §5.1,
 * §5.4, §5.5). Nothing here compiles a regex; `detector.ts` does that through the project's
 * Python-regex translator.
 */
import {ALPHA_DIRECTIVE, expandDirectives} from './directives.js'

export const enum TemplateKind {
  /** `%`-pattern: the named groups are converted like strptime fields. */
  Pattern = 0,
  /** Unix seconds, fraction kept. */
  Epoch = 1,
  /** Seconds, milliseconds (13+ digits) or microseconds (16 digits without `.`). */
  LongEpoch = 2,
  /** `@` + 24 hex digits. */
  Tai64n = 3,
}

export interface TemplateSpec {
  /** Name as fail2ban-regex prints it. */
  readonly name: string
  /** The Python-`re` regex searched in the raw line; group 1 is the date text to cut. */
  readonly regex: string
  readonly kind: TemplateKind
  /** Epoch kinds: the group holding the number. */
  readonly valueGroup: number
  /** True when group 1 always ends where the whole match ends (only lookarounds follow it). */
  readonly group1AtEnd: boolean
  /** Anchored at line begin (`^`, `{^LN-BEG}`) / line end (`$`). */
  readonly lineBegin: boolean
  readonly lineEnd: boolean
  /** The `%`-pattern it was built from (Pattern kind; used by `{DATE}` expansion). */
  readonly pattern?: string
  /** True for the `{NONE}` template. */
  readonly none?: boolean
}

// fail2ban's helper expressions that rewrite a template regex (same meaning, JS syntax).
const GLOBAL_FLAGS = /\(\?[a-z]+\)/
const NO_WORD_BOUND_BEGIN = /^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^)/
const NO_WORD_BOUND_END = /(?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$/
const HAS_PLAIN_GROUP = /(?<!\(\?)(?<!\\)\((?!\?)/
const WRAP_GROUP = /^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)([^\n]*?)(\$?)$/
const LINE_BOUND_BEGIN = /^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|))/
const LINE_BOUND_END = /(?<![\\|])(?:\$\)?)$/
const DEL_WORD_BOUNDS = /^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$/g
const UNBOUND_PREFIX = /^\{UNB\}/
const LINE_BEGIN_PREFIX = /^\{\^LN-BEG\}/
const WORD_BEGIN_BOUND = /^\((?:\?:)?\^\|\\b\|\\W\)/
const WORD_END_BOUND = /\(\?=\\b\|\\W\|\$\)$/
const EPOCH_PLACEHOLDER = /(?<!\\)\{L?EPOCH\}/gi
const DATE_PLACEHOLDER = /(?<!\\)\{DATE\}/gi

const EPOCH_RE = String.raw`\d{10,11}\b(?:\.\d{3,6})?`
const LONG_EPOCH_RE = String.raw`\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?`

type WordBegin = boolean | 'start'

interface Built {
  regex: string
  name: string
  lineBegin: boolean
  lineEnd: boolean
  wrapped: boolean
}

/** fail2ban `DateTemplate.setRegex`: boundaries, group 1, global flags. */
function finishRegex(input: string, wordBegin: WordBegin, wordEnd: boolean, name: string): Built {
  let regex = input.trim()
  // Global flags such as (?iu) are cut out and put back at the very front.
  const gf = GLOBAL_FLAGS.exec(regex)
  if (gf) regex = regex.slice(0, gf.index) + regex.slice(gf.index + gf[0].length)
  const boundBegin = wordBegin !== false && !NO_WORD_BOUND_BEGIN.test(regex)
  const boundEnd = wordEnd && !NO_WORD_BOUND_END.test(regex)
  let wrapped = false
  if (!HAS_PLAIN_GROUP.test(regex)) {
    const w = WRAP_GROUP.exec(regex)
    if (w) {
      regex = `${w[1]}(${w[2]})${w[3]}`
      wrapped = true
    }
  }
  let lineBegin = false
  let lineEnd = false
  if (boundBegin) {
    if (wordBegin !== 'start') regex = String.raw`(?=^|\b|\W)` + regex
    else {
      lineBegin = true
      regex = String.raw`^(?:\W{0,2})?` + regex
      if (!name.startsWith('{^LN-BEG}')) name = '{^LN-BEG}' + name
    }
  }
  if (boundEnd) regex += String.raw`(?=\b|\W|$)`
  if (!lineBegin && LINE_BOUND_BEGIN.test(regex)) lineBegin = true
  if (LINE_BOUND_END.test(regex)) lineEnd = true
  regex = regex.replace(DEL_WORD_BOUNDS, (m) => m.replaceAll('**', ''))
  if (gf) regex = gf[0] + regex
  return {regex, name, lineBegin, lineEnd, wrapped}
}

/** fail2ban `DatePatternRegex`: a `%`-pattern with optional `{UNB}` / `{^LN-BEG}` prefix. */
function patternTemplate(original: string): TemplateSpec {
  let pattern = original
  let wordBegin: WordBegin = true
  let wordEnd = true
  if (UNBOUND_PREFIX.test(pattern)) {
    pattern = pattern.replace(UNBOUND_PREFIX, '')
    wordBegin = wordEnd = false
  }
  if (wordBegin && LINE_BEGIN_PREFIX.test(pattern)) {
    pattern = pattern.replace(LINE_BEGIN_PREFIX, '')
    wordBegin = 'start'
  }
  const ex = expandDirectives(pattern)
  let regex = ex.regex
  if (ALPHA_DIRECTIVE.test(pattern)) regex = '(?iu)' + regex
  const b = finishRegex(regex, wordBegin, wordEnd, ex.name)
  return {
    name: b.name,
    regex: b.regex,
    kind: TemplateKind.Pattern,
    valueGroup: 0,
    group1AtEnd: b.wrapped,
    lineBegin: b.lineBegin,
    lineEnd: b.lineEnd,
    pattern: original,
  }
}

/** fail2ban `DateEpoch`. */
function epochTemplate(lineBeginOnly: boolean, long: boolean, pattern?: string): TemplateSpec {
  const epochRe = long ? LONG_EPOCH_RE : EPOCH_RE
  const kind = long ? TemplateKind.LongEpoch : TemplateKind.Epoch
  let name = pattern ?? (long ? 'LongEpoch' : 'Epoch')
  let b: Built
  let valueGroup = 1
  if (pattern !== undefined) {
    // The custom pattern is cut out as a whole (group 1); the number is group 2.
    b = finishRegex('(' + pattern.replace(EPOCH_PLACEHOLDER, () => `(${epochRe})`) + ')', true, true, name)
    valueGroup = 2
  } else if (!lineBeginOnly) {
    b = finishRegex(
      String.raw`((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))` + epochRe +
        String.raw`)(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\])))`,
      false,
      true,
      name,
    )
  } else {
    b = finishRegex(String.raw`((?P<square>(?<=^\[))?` + epochRe + String.raw`)(?(square)(?=\]))`, 'start', true, name)
  }
  name = b.name
  return {name, regex: b.regex, kind, valueGroup, group1AtEnd: true, lineBegin: b.lineBegin, lineEnd: b.lineEnd}
}

/** fail2ban `DateTai64n`. */
function tai64nTemplate(wordBegin: WordBegin): TemplateSpec {
  const b = finishRegex('@[0-9a-f]{24}', wordBegin, true, 'TAI64N')
  return {
    name: b.name,
    regex: b.regex,
    kind: TemplateKind.Tai64n,
    valueGroup: 1,
    group1AtEnd: true,
    lineBegin: b.lineBegin,
    lineEnd: b.lineEnd,
  }
}

/** fail2ban `_getPatternTemplate`: one datepattern line (not a default-set keyword). */
function templateFor(pattern: string, key = pattern.includes('%') ? pattern : pattern.toUpperCase()): TemplateSpec {
  if (key.includes('EPOCH')) {
    EPOCH_PLACEHOLDER.lastIndex = 0
    if (EPOCH_PLACEHOLDER.test(pattern)) {
      EPOCH_PLACEHOLDER.lastIndex = 0
      return epochTemplate(false, key.includes('LEPOCH'), pattern)
    }
    if (key === 'EPOCH' || key === '{^LN-BEG}EPOCH' || key === '^EPOCH') return epochTemplate(key !== 'EPOCH', false)
    if (key === 'LEPOCH' || key === '{^LN-BEG}LEPOCH' || key === '^LEPOCH') return epochTemplate(key !== 'LEPOCH', true)
  }
  if (key === 'TAI64N' || key === '{^LN-BEG}TAI64N' || key === '^TAI64N') return tai64nTemplate(key !== 'TAI64N' ? 'start' : false)
  return patternTemplate(pattern)
}

/** The 17 base patterns, in fail2ban's order (SPEC §5.4, templates 14–30). */
export const BASE_PATTERNS: readonly string[] = [
  String.raw`%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
  String.raw`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  String.raw`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
  String.raw`%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S`,
  String.raw`%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
  String.raw`%m/%d/%ExY:%H:%M:%S`,
  String.raw`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
  'EPOCH',
  '{^LN-BEG}%H:%M:%S',
  '^<%m/%d/%Exy@%H:%M:%S>',
  '%Exy%Exm%Exd  ?%H:%M:%S',
  '%b %d, %ExY %I:%M:%S %p',
  '^%b-%d-%Exy %k:%M:%S',
  String.raw`%ExY%Exm%Exd(?:-|T|  ?)%ExH:?%ExM:?%ExS(?:[.,]%f)?(?:\s*%z)?`,
  String.raw`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  String.raw`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
  'TAI64N',
]

let bases: TemplateSpec[] | undefined
let defaults: TemplateSpec[] | undefined

/** The 17 base templates (fail2ban `defaultTemplates`). */
export function baseTemplates(): readonly TemplateSpec[] {
  return (bases ??= BASE_PATTERNS.map((p) => templateFor(p)))
}

/** The 31 default templates: the line-begin anchored copies first, then the bases. */
export function defaultTemplates(): readonly TemplateSpec[] {
  if (defaults) return defaults
  const anchored: TemplateSpec[] = []
  for (const t of baseTemplates()) {
    if (t.name.startsWith('{^LN-BEG}') || t.name.startsWith('^')) continue
    const a = templateFor('{^LN-BEG}' + (t.pattern ?? t.name))
    if (a.name !== t.name) anchored.push(a)
  }
  return (defaults = [...anchored, ...baseTemplates()])
}

/** fail2ban `DateTemplate.unboundPattern`: strip `{UNB}`, `{^LN-BEG}` and word boundaries. */
function unboundPattern(p: string): string {
  return p.replace(UNBOUND_PREFIX, '').replace(LINE_BEGIN_PREFIX, '').replace(WORD_BEGIN_BOUND, '').replace(WORD_END_BOUND, '')
}

const NONE_TEMPLATE: TemplateSpec = {...templateFor('{UNB}^', '{NONE}'), none: true}

/**
 * Templates for a filter's raw `datepattern` (one template per non-empty line; `undefined` =
 * the 31 defaults). Throws for a bad `%` directive or a duplicate template.
 */
export function templatesFor(datepattern: string | undefined): TemplateSpec[] {
  if (datepattern === undefined) return [...defaultTemplates()]
  const out: TemplateSpec[] = []
  const names = new Set<string>()
  const add = (t: TemplateSpec, ignoreDup: boolean): void => {
    if (names.has(t.name)) {
      if (ignoreDup) return
      throw new Error(`There is already a template with name ${t.name}`)
    }
    names.add(t.name)
    out.push(t)
  }
  for (const raw of datepattern.split(/\n+/)) {
    const pattern = raw.trim()
    if (pattern === '') continue
    const key = pattern.includes('%') ? pattern : pattern.toUpperCase()
    // SPEC §5.1: {DEFAULT} = all 31 defaults. (fail2ban 1.0's own filter lambda drops them all
    // when {DEFAULT} follows another template and only falls back to the defaults when the
    // detector ends up empty; spylog follows the SPEC.)
    if (key === '{^LN-BEG}' || key === '{DEFAULT}') {
      const ignoreDup = out.length > 0
      for (const t of defaultTemplates()) if (key === '{DEFAULT}' || t.lineBegin) add(t, ignoreDup)
    } else if (key.includes('{DATE}')) {
      const ignoreDup = out.length > 0
      for (const t of baseTemplates()) {
        // Pattern templates substitute their %-pattern; Epoch and TAI64N their *name* (a quirk:
        // inside other text these become the literal words "Epoch" / "TAI64N").
        const sub = unboundPattern(t.pattern ?? t.name)
        add(templateFor(pattern.replace(DATE_PLACEHOLDER, () => sub)), ignoreDup)
      }
    } else if (key === '{NONE}') add(NONE_TEMPLATE, false)
    else add(templateFor(pattern, key), false)
  }
  return out
}
