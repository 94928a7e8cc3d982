//! The HTTP client of every AWS call atlas-iam makes or has the SDK make (STS, IAM, instance
//! metadata, the container endpoint, web identity, SSO): the SDK's own default client, with each
//! reply body read to at most `MAX_BODY` before anything parses it. An STS or metadata answer is
//! a few kilobytes; without the cap, an endpoint that streams gigabytes is read into memory.

use std::sync::OnceLock;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// The most an AWS reply body may hold.
pub(super) const MAX_BODY: usize = 1024 * 1024;

/// The capped client, made once (it holds the connection pool).
pub(super) fn client() -> Option<SharedHttpClient> {
    static CLIENT: OnceLock<Option<SharedHttpClient>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::proxy::ProxyConfig;
            use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
            use aws_smithy_http_client::{Builder, ConnectorBuilder};
            // as the SDK builds its default client (rustls with aws-lc, the proxy variables)
            let inner = Builder::new().build_with_connector_fn(|settings, components| {
                let mut conn = ConnectorBuilder::default()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                conn.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    conn.set_sleep_impl(components.sleep_impl());
                }
                conn.set_proxy_config(Some(ProxyConfig::from_env()));
                conn.build()
            });
            Some(SharedHttpClient::new(Capped { inner }))
        })
        .clone()
}

#[derive(Debug)]
struct Capped {
    inner: SharedHttpClient,
}

impl HttpClient for Capped {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CappedConnector(
            self.inner.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct CappedConnector(SharedHttpConnector);

impl HttpConnector for CappedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.0.clone();
        HttpConnectorFuture::new(async move {
            let mut response = inner.call(request).await?;
            let mut stream = ByteStream::new(response.take_body());
            let mut body = Vec::new();
            while let Some(chunk) = stream
                .try_next()
                .await
                .map_err(|e| ConnectorError::io(e.into()))?
            {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(ConnectorError::other(
                        format!("the reply's body is over {MAX_BODY} bytes, and was not read")
                            .into(),
                        None,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            *response.body_mut() = SdkBody::from(body);
            Ok(response)
        })
    }
}
