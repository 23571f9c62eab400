//! WeChat mini-program loan codes (贷款码) rendered as QR-code PNGs.
//!
//! The QR carries the mini-program page path with the loan-code id in `scene`
//! (`pages/apply/index?scene=<scene>`); the page reads `scene` on launch. `scene` follows the
//! `wxacode.getUnlimited` rules: at most 32 visible characters from digits, letters and
//! `!#$&'()*+,/:;=?@-._~`.

use qrcode::{Color, EcLevel, QrCode};

/// The mini-program page a loan code opens when the caller names no other.
pub const DEFAULT_PAGE: &str = "pages/apply/index";
/// Most characters WeChat accepts in a `scene`.
pub const MAX_SCENE_CHARS: usize = 32;
/// Width of the white border around the code, in modules (the QR standard's minimum).
pub const QUIET_ZONE_MODULES: usize = 4;
/// Side of one module in the PNG, in pixels.
pub const MODULE_PX: usize = 8;

/// Punctuation WeChat allows in a `scene`, besides ASCII digits and letters.
const SCENE_PUNCTUATION: &str = "!#$&'()*+,/:;=?@-._~";

/// Why a loan code could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// The scene is empty, so the code would carry no loan-code id.
    #[error("scene is empty: a loan code needs its id in `scene`")]
    EmptyScene,
    /// The scene is longer than WeChat allows.
    #[error("scene has {len} characters; WeChat allows at most {MAX_SCENE_CHARS}")]
    SceneTooLong {
        /// Number of characters in the refused scene.
        len: usize,
    },
    /// The scene holds a character WeChat does not allow.
    #[error(
        "scene has {ch:?} at character {position}; only digits, letters and !#$&'()*+,/:;=?@-._~ are allowed"
    )]
    BadSceneChar {
        /// The refused character.
        ch: char,
        /// Its position in the scene, counted in characters from 0.
        position: usize,
    },
    /// The page is not a mini-program page path such as `pages/apply/index`.
    #[error(
        "page {page:?} is not a mini-program page path: use segments of letters, digits, '-', '_' or '.' joined by '/', with no leading '/' and no query"
    )]
    BadPage {
        /// The refused page path.
        page: String,
    },
    /// The QR encoder refused the payload.
    #[error("the QR encoder refused the payload: {0}")]
    Encode(String),
    /// Writing the PNG failed.
    #[error("writing the PNG failed: {0}")]
    Png(String),
}

/// Checks `scene` against WeChat's rules: 1 to 32 characters from digits, letters and `!#$&'()*+,/:;=?@-._~`.
pub fn check_scene(scene: &str) -> Result<(), QrError> {
    if scene.is_empty() {
        return Err(QrError::EmptyScene);
    }
    let len = scene.chars().count();
    if len > MAX_SCENE_CHARS {
        return Err(QrError::SceneTooLong { len });
    }
    match scene
        .chars()
        .enumerate()
        .find(|&(_, ch)| !(ch.is_ascii_alphanumeric() || SCENE_PUNCTUATION.contains(ch)))
    {
        Some((position, ch)) => Err(QrError::BadSceneChar { ch, position }),
        None => Ok(()),
    }
}

/// Checks that `page` is a mini-program page path: `/`-joined segments of letters, digits, `-`, `_` or `.`.
pub fn check_page(page: &str) -> Result<(), QrError> {
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    };
    if page.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(QrError::BadPage {
            page: page.to_owned(),
        })
    }
}

/// The text the QR carries: `<page>?scene=<scene>`, with `scene` percent-encoded as `encodeURIComponent` would.
///
/// Digits, letters and `-_.!~*'()` pass through unchanged, so a plain id gives
/// `pages/apply/index?scene=<id>`; characters such as `&`, `=` or `#` are escaped so they cannot
/// break the query, and the page recovers the scene with `decodeURIComponent`.
pub fn payload(scene: &str, page: &str) -> String {
    let mut out = String::with_capacity(page.len() + 7 + scene.len() * 3);
    out.push_str(page);
    out.push_str("?scene=");
    for byte in scene.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Renders the loan code for `scene` on `page` as a PNG: black modules on white, 8 px per module, 4-module quiet zone.
pub fn loan_code_png(scene: &str, page: &str) -> Result<Vec<u8>, QrError> {
    check_scene(scene)?;
    check_page(page)?;
    let code = QrCode::with_error_correction_level(payload(scene, page), EcLevel::M)
        .map_err(|err| QrError::Encode(err.to_string()))?;
    encode_png(&code)
}

/// Draws `code` as a 1-bit greyscale PNG (bit 0 black, bit 1 white).
fn encode_png(code: &QrCode) -> Result<Vec<u8>, QrError> {
    let modules = code.width();
    let side = (modules + 2 * QUIET_ZONE_MODULES) * MODULE_PX;
    let side_u32 = u32::try_from(side).map_err(|err| QrError::Png(err.to_string()))?;
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xFF_u8; row_bytes * side];
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color != Color::Dark {
            continue;
        }
        let left = (index % modules + QUIET_ZONE_MODULES) * MODULE_PX;
        let top = (index / modules + QUIET_ZONE_MODULES) * MODULE_PX;
        for y in top..top + MODULE_PX {
            let row = &mut pixels[y * row_bytes..(y + 1) * row_bytes];
            for x in left..left + MODULE_PX {
                row[x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }

    let png_err = |err: png::EncodingError| QrError::Png(err.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(&pixels).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

    /// Decodes a PNG to 8-bit luminance: (width, height, pixels row by row).
    fn decode_grey(png_bytes: &[u8]) -> (usize, usize, Vec<u8>) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width as usize, info.height as usize, buf)
    }

    fn read_back(png_bytes: &[u8]) -> String {
        let (w, h, pixels) = decode_grey(png_bytes);
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "expected exactly one QR code in the PNG");
        grids[0].decode().unwrap().1
    }

    #[test]
    fn payload_uses_page_and_scene() {
        assert_eq!(
            payload("LC20250101A7", DEFAULT_PAGE),
            "pages/apply/index?scene=LC20250101A7"
        );
        assert_eq!(
            payload("a&b=c#d+e/f?g", "pages/x/y"),
            "pages/x/y?scene=a%26b%3Dc%23d%2Be%2Ff%3Fg"
        );
        assert_eq!(payload("-_.!~*'()", "p"), "p?scene=-_.!~*'()");
    }

    #[test]
    fn png_has_signature_and_expected_size() {
        let bytes = loan_code_png("LC20250101A7", DEFAULT_PAGE).unwrap();
        assert_eq!(bytes[..8], PNG_SIGNATURE);
        let code =
            QrCode::with_error_correction_level(payload("LC20250101A7", DEFAULT_PAGE), EcLevel::M)
                .unwrap();
        let side = (code.width() + 2 * QUIET_ZONE_MODULES) * MODULE_PX;
        let (w, h, pixels) = decode_grey(&bytes);
        assert_eq!((w, h), (side, side));
        assert!(
            pixels.iter().all(|&p| p == 0 || p == 255),
            "only black and white"
        );
    }

    #[test]
    fn every_pixel_matches_the_module_matrix() {
        let scene = "LC-0001_a.b~c";
        let bytes = loan_code_png(scene, DEFAULT_PAGE).unwrap();
        let code =
            QrCode::with_error_correction_level(payload(scene, DEFAULT_PAGE), EcLevel::M).unwrap();
        let modules = code.width();
        let colors = code.to_colors();
        let (w, h, pixels) = decode_grey(&bytes);
        for y in 0..h {
            for x in 0..w {
                let (mx, my) = (x / MODULE_PX, y / MODULE_PX);
                let inside = QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + modules;
                let dark = inside.contains(&mx)
                    && inside.contains(&my)
                    && colors[(my - QUIET_ZONE_MODULES) * modules + (mx - QUIET_ZONE_MODULES)]
                        == Color::Dark;
                let want = if dark { 0 } else { 255 };
                assert_eq!(pixels[y * w + x], want, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn qr_decoder_reads_the_payload_back() {
        for scene in [
            "LC20250101A7",
            "a",
            "0123456789abcdefghijABCDEFGHIJ!#",
            "$&'()*+,/:;=?@-._~",
        ] {
            let bytes = loan_code_png(scene, DEFAULT_PAGE).unwrap();
            assert_eq!(
                read_back(&bytes),
                payload(scene, DEFAULT_PAGE),
                "scene {scene:?}"
            );
        }
        let bytes = loan_code_png("X1", "pages/loan/detail").unwrap();
        assert_eq!(read_back(&bytes), "pages/loan/detail?scene=X1");
    }

    #[test]
    fn accepts_exactly_32_characters() {
        let scene = "A".repeat(MAX_SCENE_CHARS);
        assert_eq!(check_scene(&scene), Ok(()));
        assert!(loan_code_png(&scene, DEFAULT_PAGE).is_ok());
    }

    #[test]
    fn refuses_bad_scenes() {
        assert_eq!(
            loan_code_png(&"A".repeat(33), DEFAULT_PAGE),
            Err(QrError::SceneTooLong { len: 33 })
        );
        assert_eq!(
            loan_code_png("LC 1", DEFAULT_PAGE),
            Err(QrError::BadSceneChar {
                ch: ' ',
                position: 2
            })
        );
        assert_eq!(
            loan_code_png("贷款码1", DEFAULT_PAGE),
            Err(QrError::BadSceneChar {
                ch: '贷',
                position: 0
            })
        );
        assert_eq!(loan_code_png("", DEFAULT_PAGE), Err(QrError::EmptyScene));
        for bad in [
            "a%20b", "a\"b", "a\nb", "a<b", "a\\b", "a^b", "a`b", "a|b", "a{b}",
        ] {
            assert!(
                matches!(check_scene(bad), Err(QrError::BadSceneChar { .. })),
                "{bad:?} should be refused"
            );
        }
        // 32 characters but one of them is not ASCII: refused for the character, not the length.
        let mixed = format!("{}é", "A".repeat(31));
        assert!(matches!(
            check_scene(&mixed),
            Err(QrError::BadSceneChar { ch: 'é', .. })
        ));
    }

    #[test]
    fn refuses_bad_pages() {
        for bad in [
            "",
            "/pages/apply/index",
            "pages/apply/",
            "pages//index",
            "pages/apply/index?x=1",
            "pages/apply index",
        ] {
            assert_eq!(
                loan_code_png("LC1", bad),
                Err(QrError::BadPage {
                    page: bad.to_owned()
                }),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(check_page(DEFAULT_PAGE), Ok(()));
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            QrError::SceneTooLong { len: 33 }.to_string(),
            "scene has 33 characters; WeChat allows at most 32"
        );
    }
}
