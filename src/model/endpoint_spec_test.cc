#include <gtest/gtest.h>

#include "breakfix/openai_client.h"

namespace breakfix {
namespace {

TEST(ParseEndpointSpecTest, AllKeys) {
  auto o = ParseEndpointSpec(
      "name=phi3,url=http://127.0.0.1:8000/v1,model=phi-3-mini,key_env=OPENAI_API_KEY,"
      "key_header=api-key,concurrency=32,rpm=600,tpm=90000.5,retries=3,connect_timeout_ms=100,"
      "timeout_ms=2000,idle_timeout_ms=500,temperature=0.7,max_tokens=64,top_p=0.9,"
      "header.X-Org=acme");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->name, "phi3");
  EXPECT_EQ(o->base_url, "http://127.0.0.1:8000/v1");
  EXPECT_EQ(o->model, "phi-3-mini");
  EXPECT_EQ(o->api_key_env, "OPENAI_API_KEY");
  EXPECT_EQ(o->api_key_header, "api-key");
  EXPECT_EQ(o->max_concurrency, 32);
  EXPECT_DOUBLE_EQ(o->requests_per_minute, 600);
  EXPECT_DOUBLE_EQ(o->tokens_per_minute, 90000.5);
  EXPECT_EQ(o->max_retries, 3);
  EXPECT_EQ(o->connect_timeout_ms, 100);
  EXPECT_EQ(o->total_timeout_ms, 2000);
  EXPECT_EQ(o->idle_timeout_ms, 500);
  EXPECT_DOUBLE_EQ(*o->temperature, 0.7);
  EXPECT_EQ(*o->max_tokens, 64);
  EXPECT_DOUBLE_EQ(*o->top_p, 0.9);
  EXPECT_EQ(o->extra_headers.at("X-Org"), "acme");
}

TEST(ParseEndpointSpecTest, BareUrlAndDefaults) {
  auto o =
      ParseEndpointSpec("https://example.com:8443/openai/deployments/d?api-version=2024-02-01");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->base_url, "https://example.com:8443/openai/deployments/d?api-version=2024-02-01");
  EXPECT_EQ(o->name, "");  // left for the caller (the CLI names it after the role)
  EXPECT_EQ(o->max_concurrency, EndpointOptions().max_concurrency);
  EXPECT_FALSE(o->temperature.has_value());
  EXPECT_FALSE(o->max_tokens.has_value());

  auto spaced = ParseEndpointSpec(" http://h/v1 , model=m ");
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->base_url, "http://h/v1");
  EXPECT_EQ(spaced->model, "m");
}

TEST(ParseEndpointSpecTest, EscapedComma) {
  auto o = ParseEndpointSpec("url=http://h/v1,header.X-List=a\\,b");
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->extra_headers.at("X-List"), "a,b");
}

TEST(ParseEndpointSpecTest, UnknownKeyListsValidKeys) {
  auto o = ParseEndpointSpec("url=http://h/v1,concurrancy=4");
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find("\"concurrancy\""), std::string::npos);
  EXPECT_NE(o.status().message().find("concurrency, rpm, tpm"), std::string::npos);
}

TEST(ParseEndpointSpecTest, BadNumbersNameKeyAndValue) {
  struct Case {
    const char* spec;
    const char* key;
  } cases[] = {
      {"url=http://h/v1,concurrency=abc", "concurrency"},
      {"url=http://h/v1,concurrency=0", "concurrency"},
      {"url=http://h/v1,rpm=-1", "rpm"},
      {"url=http://h/v1,tpm=1x", "tpm"},
      {"url=http://h/v1,retries=-2", "retries"},
      {"url=http://h/v1,timeout_ms=0", "timeout_ms"},
      {"url=http://h/v1,temperature=nan", "temperature"},
      {"url=http://h/v1,top_p=0", "top_p"},
      {"url=http://h/v1,top_p=1.5", "top_p"},
      {"url=http://h/v1,max_tokens=", "max_tokens"},
  };
  for (const Case& c : cases) {
    auto o = ParseEndpointSpec(c.spec);
    ASSERT_FALSE(o.ok()) << c.spec;
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(o.status().message().find(std::string("\"") + c.key + "\""), std::string::npos)
        << o.status().message();
    std::string value = std::string(c.spec).substr(std::string(c.spec).rfind('=') + 1);
    EXPECT_NE(o.status().message().find("got \"" + value + "\""), std::string::npos)
        << o.status().message();
  }
}

TEST(ParseEndpointSpecTest, StructuralErrors) {
  EXPECT_FALSE(ParseEndpointSpec("").ok());
  EXPECT_FALSE(ParseEndpointSpec("model=m").ok());      // no url
  EXPECT_FALSE(ParseEndpointSpec("url=ftp://h").ok());  // not http(s)
  EXPECT_FALSE(ParseEndpointSpec("url=http://h,junk").ok());
  auto twice = ParseEndpointSpec("url=http://a,url=http://b");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("twice"), std::string::npos);
}

TEST(ParseEndpointSpecTest, BackoffKeys) {
  auto o =
      ParseEndpointSpec("url=http://h/v1,backoff_ms=20,max_backoff_ms=400,max_retry_after_ms=0");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->initial_backoff_ms, 20);
  EXPECT_EQ(o->max_backoff_ms, 400);
  EXPECT_EQ(o->max_retry_after_ms, 0);
  EXPECT_FALSE(ParseEndpointSpec("url=http://h/v1,backoff_ms=0").ok());
}

}  // namespace
}  // namespace breakfix
