// Converters: transformations applied to an attacker's prompt before the target sees it, the way
// real attackers obfuscate a request (encodings, look-alike characters, split payloads) or
// restate it (rephrasing, translation). They compose left to right into a chain, and every
// converter has an Identity() that is part of a finding's record, so an attack replays exactly.
//
// Spec strings (for YAML and the command line):
//   base64                the UTF-8 bytes in standard base64                      reversible
//   rot13                 Latin letters rotated by 13                             reversible
//   leetspeak             a->4 e->3 i->1 o->0 s->5 t->7 (both cases; so not reversible)
//   char_swap[:RATE]      swaps two adjacent letters inside words longer than three letters,
//                         each word with probability RATE (default 0.3), seeded
//   confusables[:RATE]    replaces Latin letters by look-alike Cyrillic and Greek letters with
//                         probability RATE (default 1.0), seeded   reversible on text that
//                                                                  had no such letters already
//   payload_split[:N]     cuts the text into N parts (default 3) given as variables, with an
//                         instruction to join them and answer the result
//                                                            reversible on valid UTF-8 text
//   rephrase              an LLM restates the text in other words (needs a converter model)
//   translate:LANGUAGE    an LLM translates the text into LANGUAGE (needs a converter model)
//
// Deterministic converters give the same output for the same text, parameters and seed; LLM
// converters send the seed to the model and use greedy sampling.
#ifndef BREAKFIX_CONVERTERS_H_
#define BREAKFIX_CONVERTERS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "breakfix/chat_model.h"
#include "breakfix/status.h"

namespace breakfix {

class Converter {
 public:
  virtual ~Converter() = default;
  // The spec name ("base64", "translate").
  virtual const std::string& name() const = 0;
  // Name and every parameter (and the model's identity for LLM converters): what a finding
  // records so that a replay converts the same way.
  virtual std::string Identity() const = 0;
  // Converts `text`. `seed` drives the random choices of seeded converters. Blocking: LLM
  // converters wait for their model, so do not call this from a ChatCallback.
  virtual Result<std::string> Convert(const std::string& text, uint64_t seed) const = 0;
  // Whether Reverse() recovers the input exactly from the output.
  virtual bool reversible() const { return false; }
  // The input that Convert() turned into `converted` (reversible converters only); an
  // InvalidArgument error when `converted` is not such an output.
  virtual Result<std::string> Reverse(const std::string& converted) const;
};

// Builds a converter from its spec. `model` is required by the LLM converters (rephrase,
// translate) and ignored by the others; a missing model, an unknown name or a bad parameter is
// an InvalidArgument error that lists what is accepted.
Result<std::unique_ptr<Converter>> MakeConverter(const std::string& spec,
                                                 ChatModel* model = nullptr);

// Every spec name MakeConverter accepts, for help texts.
const std::vector<std::string>& ConverterNames();

// Converters applied in order; each step gets its own seed derived from `seed` and its
// position, so adding a converter does not change the choices of the ones before it.
class ConverterChain {
 public:
  ConverterChain() = default;
  explicit ConverterChain(std::vector<std::unique_ptr<Converter>> steps)
      : steps_(std::move(steps)) {}
  // From specs, e.g. {"translate:French", "base64"}.
  static Result<ConverterChain> FromSpecs(const std::vector<std::string>& specs,
                                          ChatModel* model = nullptr);

  Result<std::string> Convert(const std::string& text, uint64_t seed) const;
  // "base64|rot13"; "" for the empty chain.
  std::string Identity() const;
  // The names joined by "+" ("none" for the empty chain), for report rows.
  std::string Label() const;
  bool empty() const { return steps_.empty(); }
  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::unique_ptr<Converter>> steps_;
};

// Standard base64 (RFC 4648, with padding) of bytes, and its inverse; Base64Decode rejects
// anything that is not canonical base64.
std::string Base64Encode(const std::string& bytes);
Result<std::string> Base64Decode(const std::string& text);

}  // namespace breakfix

#endif  // BREAKFIX_CONVERTERS_H_
