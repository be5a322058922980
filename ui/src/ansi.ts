// ANSI SGR escape sequences (colours, bold, underline) to styled segments for the log viewer.
// Other escape sequences (cursor moves, erase line) are dropped. No DOM: unit-tested.

export interface AnsiStyle {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

export interface AnsiSegment extends AnsiStyle {
  text: string;
}

const BASIC = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];

/** xterm's 256-colour palette entry n as a CSS colour (0–15 map to the theme's named colours). */
function color256(n: number): string {
  if (n < 8) return `ansi-${BASIC[n]}`;
  if (n < 16) return `ansi-bright-${BASIC[n - 8]}`;
  if (n < 232) {
    const i = n - 16;
    const level = (v: number) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
  }
  const gray = 8 + (n - 232) * 10;
  return `rgb(${gray},${gray},${gray})`;
}

function applyCodes(style: AnsiStyle, codes: number[]): AnsiStyle {
  const s = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c === 0) {
      for (const k of Object.keys(s)) delete s[k as keyof AnsiStyle];
    } else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) {
      delete s.bold;
      delete s.dim;
    } else if (c === 23) delete s.italic;
    else if (c === 24) delete s.underline;
    else if (c >= 30 && c <= 37) s.fg = `ansi-${BASIC[c - 30]}`;
    else if (c >= 90 && c <= 97) s.fg = `ansi-bright-${BASIC[c - 90]}`;
    else if (c >= 40 && c <= 47) s.bg = `ansi-${BASIC[c - 40]}`;
    else if (c >= 100 && c <= 107) s.bg = `ansi-bright-${BASIC[c - 100]}`;
    else if (c === 39) delete s.fg;
    else if (c === 49) delete s.bg;
    else if (c === 38 || c === 48) {
      const key = c === 38 ? "fg" : "bg";
      if (codes[i + 1] === 5 && codes[i + 2] !== undefined) {
        s[key] = color256(codes[i + 2]! & 255);
        i += 2;
      } else if (codes[i + 1] === 2 && codes[i + 4] !== undefined) {
        const [r, g, b] = [codes[i + 2]!, codes[i + 3]!, codes[i + 4]!].map((v) => Math.max(0, Math.min(255, v)));
        s[key] = `rgb(${r},${g},${b})`;
        i += 4;
      }
    }
  }
  return s;
}

// CSI sequences (ESC [ params final-byte) and OSC sequences (ESC ] ... BEL or ESC \).
const ESCAPES = /\u001b\[([0-9;:?]*)([@-~])|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]/g;

export function parseAnsi(text: string): AnsiSegment[] {
  const out: AnsiSegment[] = [];
  let style: AnsiStyle = {};
  let last = 0;
  const emit = (t: string) => {
    if (t === "") return;
    const prev = out[out.length - 1];
    if (prev && sameStyle(prev, style)) prev.text += t;
    else out.push({ ...style, text: t });
  };
  for (const m of text.matchAll(ESCAPES)) {
    emit(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] === "m") {
      const codes = (m[1] ?? "").split(/[;:]/).map((v) => (v === "" ? 0 : Number(v)));
      style = applyCodes(style, codes.length ? codes : [0]);
    }
  }
  emit(text.slice(last));
  return out;
}

function sameStyle(a: AnsiStyle, b: AnsiStyle): boolean {
  return a.fg === b.fg && a.bg === b.bg && !!a.bold === !!b.bold && !!a.dim === !!b.dim && !!a.italic === !!b.italic && !!a.underline === !!b.underline;
}
