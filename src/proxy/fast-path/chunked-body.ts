/**
 * Follows a chunked body (RFC 9112 §7.1) as it is relayed byte for byte, only to know where
 * it ends (the connection then carries the next answer). Strict: a size line of hex digits
 * (extensions skipped), CRLF after every chunk, trailer lines, the final blank line; anything
 * else is malformed and the relay is cut.
 */
export class ChunkedBody {
  #state = State.Size;
  #remaining = 0;
  #hasDigit = false;

  /** Ready for the next body. */
  reset(): void {
    this.#state = State.Size;
    this.#remaining = 0;
    this.#hasDigit = false;
  }

  /**
   * Reads `buf` from `from`. Returns the index just past the body's end, NOT_ENDED when all
   * of `buf` belongs to the body, MALFORMED when it is not chunked encoding.
   */
  scan(buf: Buffer, from: number): number {
    let at = from;
    while (at < buf.length) {
      if (this.#state === State.Data) {
        const take = Math.min(this.#remaining, buf.length - at);
        this.#remaining -= take;
        at += take;
        if (this.#remaining === 0) this.#state = State.DataCr;
        continue;
      }
      const byte = buf[at++] as number;
      switch (this.#state) {
        case State.Size: {
          const digit = hexValue(byte);
          if (digit >= 0) {
            // 2^40 bytes is far past any body; bounded so the arithmetic stays exact.
            if (this.#remaining > 0xffffffffff / 16) return MALFORMED;
            this.#remaining = this.#remaining * 16 + digit;
            this.#hasDigit = true;
          } else if (byte === 59 /* ; */ || byte === 32 || byte === 9) this.#state = State.Extension;
          else if (byte === 13) this.#state = State.SizeLf;
          else return MALFORMED;
          break;
        }
        case State.Extension:
          if (byte === 13) this.#state = State.SizeLf;
          else if (byte === 10) return MALFORMED;
          break;
        case State.SizeLf:
          if (byte !== 10 || !this.#hasDigit) return MALFORMED;
          this.#hasDigit = false;
          this.#state = this.#remaining === 0 ? State.TrailerStart : State.Data;
          break;
        case State.DataCr:
          if (byte !== 13) return MALFORMED;
          this.#state = State.DataLf;
          break;
        case State.DataLf:
          if (byte !== 10) return MALFORMED;
          this.#state = State.Size;
          break;
        case State.TrailerStart:
          this.#state = byte === 13 ? State.EndLf : byte === 10 ? State.Malformed : State.Trailer;
          if (this.#state === State.Malformed) return MALFORMED;
          break;
        case State.Trailer:
          if (byte === 13) this.#state = State.TrailerLf;
          else if (byte === 10) return MALFORMED;
          break;
        case State.TrailerLf:
          if (byte !== 10) return MALFORMED;
          this.#state = State.TrailerStart;
          break;
        case State.EndLf:
          if (byte !== 10) return MALFORMED;
          this.reset();
          return at;
      }
    }
    return NOT_ENDED;
  }
}

export const NOT_ENDED = -1;
export const MALFORMED = -2;

const enum State {
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Malformed,
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}
