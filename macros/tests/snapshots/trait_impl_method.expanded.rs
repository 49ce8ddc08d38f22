async fn put(&self, tenant: String, body: Vec<u8>) -> Result<usize, StoreError> {
    static __ASYNC_UPLOAD_SITE: ::async_upload::__private::Site = ::async_upload::__private::Site::new(
            "put",
        )
        .with_startup(::async_upload::__private::STARTUP)
        .with_retries(1);
    let __call = __ASYNC_UPLOAD_SITE.call(&(tenant.as_str()));
    ::async_upload::__private::execute_in_place(
            __call,
            (self, tenant, body),
            |(__a0, __a1, __a2)| {
                let __a0 = <&Self as ::core::clone::Clone>::clone(&*__a0);
                let __a1 = <String as ::core::clone::Clone>::clone(&*__a1);
                let __a2 = <Vec<u8> as ::core::clone::Clone>::clone(&*__a2);
                async move {
                    let __self = __a0;
                    #[allow(unused_variables)]
                    let tenant = __a1;
                    let mut body = __a2;
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<
                        Result<usize, StoreError>,
                    > {
                        #[allow(unreachable_code)] return __ret;
                    }
                    let __ret: Result<usize, StoreError> = {
                        body.push(b'\n');
                        __self.client.put(&body).await
                    };
                    #[allow(unreachable_code)] __ret
                }
            },
            |(__a0, __a1, __a2)| -> Result<usize, StoreError> {
                Self::put_blocking(__a0, __a1, __a2)
            },
        )
        .await
}
